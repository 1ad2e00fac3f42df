/** PCM16 conversion and streaming downsampling: pure, shared by the worklet and the player. */

/** One float sample in [-1, 1] (clipped) to a signed 16-bit integer. */
export function floatToInt16(sample: number): number {
  const v = sample < -1 ? -1 : sample > 1 ? 1 : Number.isNaN(sample) ? 0 : sample;
  return v < 0 ? Math.round(v * 0x8000) : Math.round(v * 0x7fff);
}

/** Little-endian PCM16 bytes (as the server sends them) to floats in [-1, 1). */
export function pcm16ToFloat32(bytes: ArrayBuffer): Float32Array<ArrayBuffer> {
  const count = Math.floor(bytes.byteLength / 2);
  const view = new DataView(bytes, 0, count * 2);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true) / 0x8000;
  return out;
}

/** Floats to little-endian PCM16 bytes. */
export function float32ToPcm16(samples: Float32Array): ArrayBuffer {
  const bytes = new ArrayBuffer(samples.length * 2);
  const view = new DataView(bytes);
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, floatToInt16(samples[i] ?? 0), true);
  return bytes;
}

/**
 * Streams audio at `inRate` down to `outRate` and cuts it into fixed frames of PCM16LE.
 *
 * Each output sample is the mean of the input samples since the previous one (a box filter:
 * a cheap low-pass that also handles ratios that are not whole numbers, such as 44.1 kHz).
 * State carries across `push` calls, so frames are seamless whatever the render quantum.
 */
export class Downsampler {
  readonly frameSamples: number;
  private readonly ratio: number;
  private frame: DataView;
  private filled = 0;
  private acc = 0;
  private count = 0;
  private position = 0;
  private next: number;

  constructor(inRate: number, outRate = 16000, frameMs = 20) {
    if (!(inRate >= outRate) || outRate <= 0) {
      throw new RangeError(`cannot downsample ${inRate} Hz to ${outRate} Hz`);
    }
    this.ratio = inRate / outRate;
    this.next = this.ratio;
    this.frameSamples = Math.round((outRate * frameMs) / 1000);
    this.frame = new DataView(new ArrayBuffer(this.frameSamples * 2));
  }

  /** Feeds input samples; returns the frames (PCM16LE) completed by them, oldest first. */
  push(input: Float32Array): ArrayBuffer[] {
    const done: ArrayBuffer[] = [];
    for (let i = 0; i < input.length; i++) {
      this.acc += input[i] ?? 0;
      this.count++;
      this.position++;
      if (this.position >= this.next) {
        this.next += this.ratio;
        const value = this.acc / this.count;
        this.acc = 0;
        this.count = 0;
        this.frame.setInt16(this.filled * 2, floatToInt16(value), true);
        this.filled++;
        if (this.filled === this.frameSamples) {
          done.push(this.frame.buffer as ArrayBuffer);
          this.frame = new DataView(new ArrayBuffer(this.frameSamples * 2));
          this.filled = 0;
        }
      }
    }
    return done;
  }
}

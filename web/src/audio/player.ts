/** Plays the agent's PCM16 chunks gaplessly; `clear()` silences it at once (barge-in). */
import { pcm16ToFloat32 } from "./pcm";
import { PlaybackClock } from "./scheduler";

export class Player {
  private readonly clock = new PlaybackClock();
  private readonly sources = new Set<AudioBufferSourceNode>();
  private readonly gain: GainNode;
  readonly analyser: AnalyserNode;
  private readonly probe: Float32Array<ArrayBuffer>;
  chunks = 0;

  constructor(
    private readonly context: AudioContext,
    private readonly rate: number,
  ) {
    this.gain = context.createGain();
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.probe = new Float32Array(this.analyser.fftSize);
    this.gain.connect(this.analyser);
    this.analyser.connect(context.destination);
  }

  /** Queues one chunk of PCM16LE mono at the announced output rate. */
  enqueue(pcm: ArrayBuffer): void {
    const samples = pcm16ToFloat32(pcm);
    if (samples.length === 0) return;
    const buffer = this.context.createBuffer(1, samples.length, this.rate);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    source.onended = () => this.sources.delete(source);
    this.sources.add(source);
    source.start(this.clock.schedule(this.context.currentTime, buffer.duration));
    this.chunks++;
  }

  /** Stops everything playing or queued, now. */
  clear(): void {
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // never started: nothing to stop
      }
      source.disconnect();
    }
    this.sources.clear();
    this.clock.reset();
  }

  /** Context time at which the queued audio ends. */
  get endsAt(): number {
    return this.clock.endsAt;
  }

  get playing(): boolean {
    return this.sources.size > 0 && this.clock.isPlaying(this.context.currentTime);
  }

  /** Peak absolute level of the output right now (0 when silent). */
  level(): number {
    this.analyser.getFloatTimeDomainData(this.probe);
    let peak = 0;
    for (const v of this.probe) peak = Math.max(peak, Math.abs(v));
    return peak;
  }

  close(): void {
    this.clear();
    this.gain.disconnect();
    this.analyser.disconnect();
  }
}

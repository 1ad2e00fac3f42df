import { describe, expect, it } from "vitest";
import { Downsampler, float32ToPcm16, floatToInt16, pcm16ToFloat32 } from "./pcm";

function int16s(frame: ArrayBuffer): number[] {
  return Array.from(new Int16Array(frame));
}

describe("floatToInt16", () => {
  it("maps the full scale asymmetrically and clips", () => {
    expect(floatToInt16(0)).toBe(0);
    expect(floatToInt16(1)).toBe(32767);
    expect(floatToInt16(-1)).toBe(-32768);
    expect(floatToInt16(0.5)).toBe(16384);
    expect(floatToInt16(2)).toBe(32767);
    expect(floatToInt16(-7)).toBe(-32768);
    expect(floatToInt16(Number.NaN)).toBe(0);
  });
});

describe("pcm16 round trip", () => {
  it("decodes little-endian PCM16 to floats", () => {
    const bytes = new Uint8Array([0x00, 0x80, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x40]).buffer;
    const f = pcm16ToFloat32(bytes);
    expect(Array.from(f)).toEqual([-1, 32767 / 32768, 0, 0.5]);
  });

  it("ignores a trailing odd byte", () => {
    expect(pcm16ToFloat32(new Uint8Array([1, 0, 9]).buffer).length).toBe(1);
  });

  it("encodes floats and decodes them back within one step", () => {
    const input = Float32Array.from([0, 0.25, -0.25, 0.999, -1]);
    const back = pcm16ToFloat32(float32ToPcm16(input));
    input.forEach((v, i) => expect(back[i]).toBeCloseTo(v, 4));
  });
});

describe("Downsampler", () => {
  it("cuts 48 kHz into 20 ms frames of 320 samples at 16 kHz", () => {
    const d = new Downsampler(48000, 16000, 20);
    expect(d.frameSamples).toBe(320);
    // 128-sample render quanta, as the AudioWorklet delivers them: 1 s of audio.
    const frames: ArrayBuffer[] = [];
    for (let i = 0; i < 375; i++) frames.push(...d.push(new Float32Array(128).fill(0.5)));
    expect(frames.length).toBe(50);
    for (const f of frames) {
      expect(f.byteLength).toBe(640);
      expect(new Set(int16s(f))).toEqual(new Set([16384]));
    }
  });

  it("averages each group of input samples (box filter)", () => {
    const d = new Downsampler(48000, 16000, 1); // 16-sample frames
    const input = new Float32Array(48);
    for (let i = 0; i < 48; i++) input[i] = i % 3 === 0 ? 0.3 : 0; // mean of each triple = 0.1
    const [frame] = d.push(input);
    expect(frame).toBeDefined();
    expect(int16s(frame as ArrayBuffer).every((v) => v === floatToInt16(0.1))).toBe(true);
  });

  it("keeps the rate exact for 44.1 kHz", () => {
    const d = new Downsampler(44100, 16000, 20);
    let samples = 0;
    for (let i = 0; i < 44100 / 147; i++) {
      for (const f of d.push(new Float32Array(147))) samples += f.byteLength / 2;
    }
    // 1 s in → 16000 samples out, give or take the partial frame still being filled.
    expect(samples).toBeLessThanOrEqual(16000);
    expect(samples).toBeGreaterThan(16000 - 320);
    expect(samples % 320).toBe(0);
  });

  it("is seamless across pushes of any size", () => {
    const signal = new Float32Array(4800);
    for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 7) * 0.8;
    const whole = new Downsampler(48000).push(signal).flatMap(int16s);
    const pieces = new Downsampler(48000);
    const split: number[] = [];
    for (let i = 0; i < signal.length; i += 113) split.push(...pieces.push(signal.subarray(i, i + 113)).flatMap(int16s));
    expect(split).toEqual(whole);
    expect(whole.length).toBe(1600);
  });

  it("refuses to upsample", () => {
    expect(() => new Downsampler(8000, 16000)).toThrow(RangeError);
  });
});

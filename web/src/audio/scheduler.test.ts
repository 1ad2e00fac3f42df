import { describe, expect, it } from "vitest";
import { PlaybackClock } from "./scheduler";

describe("PlaybackClock", () => {
  it("starts the first chunk one lead after now", () => {
    const clock = new PlaybackClock(0.05);
    expect(clock.schedule(10, 0.1)).toBeCloseTo(10.05);
    expect(clock.endsAt).toBeCloseTo(10.15);
  });

  it("places chunks that arrive early back to back, without gaps", () => {
    const clock = new PlaybackClock(0.05);
    const starts = [0, 0.01, 0.02, 0.03].map((now) => clock.schedule(now, 0.1));
    expect(starts[0]).toBeCloseTo(0.05);
    for (let i = 1; i < starts.length; i++) expect((starts[i] ?? 0) - (starts[i - 1] ?? 0)).toBeCloseTo(0.1);
    expect(clock.buffered(0.03)).toBeCloseTo(0.42);
    expect(clock.isPlaying(0.4)).toBe(true);
  });

  it("restarts one lead after now when the queue ran dry", () => {
    const clock = new PlaybackClock(0.02);
    clock.schedule(0, 0.1); // ends at 0.12
    expect(clock.isPlaying(0.5)).toBe(false);
    expect(clock.buffered(0.5)).toBe(0);
    expect(clock.schedule(0.5, 0.1)).toBeCloseTo(0.52);
  });

  it("forgets the queue on reset (barge-in)", () => {
    const clock = new PlaybackClock(0.02);
    for (let i = 0; i < 30; i++) clock.schedule(0, 0.1); // 3 s queued
    expect(clock.buffered(1)).toBeCloseTo(2.02);
    clock.reset();
    expect(clock.isPlaying(1)).toBe(false);
    expect(clock.schedule(1, 0.1)).toBeCloseTo(1.02);
  });

  it("keeps 24 kHz chunk boundaries exact over many chunks", () => {
    const clock = new PlaybackClock(0.05);
    let start = 0;
    for (let i = 0; i < 600; i++) start = clock.schedule(i * 0.001, 2400 / 24000);
    expect(start).toBeCloseTo(0.05 + 599 * 0.1, 9);
  });
});

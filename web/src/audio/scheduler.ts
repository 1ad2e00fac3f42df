/**
 * The timing arithmetic of gapless playback on an AudioContext timeline, kept pure for tests.
 *
 * Chunks are placed back to back: each starts where the previous one ends. When playback has
 * run dry (the next start is already in the past), the next chunk starts `lead` seconds after
 * now, which leaves the audio thread time to pick it up without a click.
 */
export class PlaybackClock {
  private head = 0;

  constructor(private readonly lead = 0.04) {}

  /** The start time for a chunk of `duration` seconds that arrives at context time `now`. */
  schedule(now: number, duration: number): number {
    const start = Math.max(this.head, now + this.lead);
    this.head = start + duration;
    return start;
  }

  /** Context time at which everything scheduled so far has played. */
  get endsAt(): number {
    return this.head;
  }

  /** Seconds of audio still queued at `now`. */
  buffered(now: number): number {
    return Math.max(0, this.head - now);
  }

  isPlaying(now: number): boolean {
    return this.head > now;
  }

  /** Forgets the queue (barge-in): the next chunk starts fresh. */
  reset(): void {
    this.head = 0;
  }
}

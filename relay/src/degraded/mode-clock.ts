/** Which mode something is in, since when, and the total time spent in each mode (for status and metrics). */
export class ModeClock<M extends string> {
  private since = Date.now();
  private readonly totals = new Map<M, number>();

  constructor(private mode: M, modes: readonly M[]) {
    for (const m of modes) this.totals.set(m, 0);
  }

  get current(): M {
    return this.mode;
  }

  get sinceMs(): number {
    return this.since;
  }

  /** Switches mode; returns how long the previous one lasted (ms), or -1 if nothing changed. */
  set(mode: M, now = Date.now()): number {
    if (mode === this.mode) return -1;
    const lasted = now - this.since;
    this.totals.set(this.mode, (this.totals.get(this.mode) ?? 0) + lasted);
    this.mode = mode;
    this.since = now;
    return lasted;
  }

  /** Seconds spent in each mode, the current stretch included. */
  seconds(now = Date.now()): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [m, ms] of this.totals) out[m] = Math.round((ms + (m === this.mode ? now - this.since : 0)) / 100) / 10;
    return out;
  }
}

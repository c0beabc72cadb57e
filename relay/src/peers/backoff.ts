/**
 * Reconnect delays: min, 2·min, 4·min ... capped at max (the runbook's 1, 2, 4, 8, 16 s with the defaults),
 * each with ±20 % jitter so peers that lost each other at the same moment do not redial in lockstep.
 */
export class Backoff {
  private attempt = 0;
  constructor(private readonly minMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {}

  next(): number {
    const base = Math.min(this.minMs * 2 ** this.attempt, Math.max(this.minMs, this.maxMs));
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}

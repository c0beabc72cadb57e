import type { RateRule } from '../ratelimit/rules.js';

/**
 * Paces bulk traffic to a peer (anti-entropy fetches and pushes, queue drains) to a rate its peer budget can
 * take: a token bucket that lets callers run into debt, so a chunk larger than the bucket waits for as long as
 * its size needs instead of never fitting. Rate 0: unpaced.
 */
export class Pacer {
  private tokens: number;
  private last = Date.now();

  constructor(readonly ratePerSecond: number) {
    this.tokens = ratePerSecond;
  }

  /** Resolves when `n` more events may go. */
  async take(n = 1): Promise<void> {
    if (this.ratePerSecond <= 0) return;
    const now = Date.now();
    this.tokens = Math.min(this.ratePerSecond, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    this.tokens -= n;
    if (this.tokens >= 0) return;
    const waitMs = Math.ceil((-this.tokens / this.ratePerSecond) * 1000);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

/**
 * Bulk sync rate per peer: the configured rate, else half of the tightest all-kinds `peer` rule of our own rate
 * limits (the network shares one configuration; the other half is left for live forwarding and the peer's own
 * fetches from us, which count against the same budget). No peer rule: unpaced.
 */
export function syncRate(configured: number, rules: readonly RateRule[]): number {
  if (configured > 0) return configured;
  const perSecond = rules.filter((r) => r.scope === 'peer').map((r) => r.limit / r.windowSeconds);
  return perSecond.length === 0 ? 0 : Math.max(1, Math.floor(Math.min(...perSecond) / 2));
}

/** A refusal that means "slow down", not "never": retried after a pause instead of counted as lost. */
export function isRateLimited(message: string): boolean {
  return message.startsWith('rate-limited:');
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

import { estimate, verdict, windowPosition, type LimitCheck, type LimitVerdict, type RateLimiter } from './window.js';

interface Counter {
  index: number;
  current: number;
  previous: number;
  windowSeconds: number;
}

/** Counters beyond this are swept of stale entries, so a flood of distinct keys cannot grow memory unbounded. */
const SWEEP_AT = 50_000;

/**
 * The same sliding window in process memory: used while Redis is unreachable, so limits keep holding (per relay
 * rather than shared) instead of failing open or refusing everything.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly counters = new Map<string, Counter>();

  async hit(checks: LimitCheck[], nowMs = Date.now()): Promise<LimitVerdict> {
    return this.hitSync(checks, nowMs);
  }

  hitSync(checks: LimitCheck[], nowMs = Date.now()): LimitVerdict {
    if (this.counters.size > SWEEP_AT) this.sweep(nowMs);
    const counts = checks.map((check) => {
      const position = windowPosition(nowMs, check.windowSeconds);
      const key = `${check.key}:${check.windowSeconds}`;
      let counter = this.counters.get(key);
      if (!counter) {
        counter = { index: position.index, current: 0, previous: 0, windowSeconds: check.windowSeconds };
        this.counters.set(key, counter);
      } else if (counter.index !== position.index) {
        counter.previous = counter.index === position.index - 1 ? counter.current : 0;
        counter.current = 0;
        counter.index = position.index;
      }
      counter.current += 1;
      return estimate(counter.current, counter.previous, position.previousWeight);
    });
    return verdict(checks, counts, 'memory');
  }

  get size(): number {
    return this.counters.size;
  }

  private sweep(nowMs: number): void {
    for (const [key, counter] of this.counters) {
      if (windowPosition(nowMs, counter.windowSeconds).index - counter.index > 1) this.counters.delete(key);
    }
  }
}

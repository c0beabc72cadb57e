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

  /** Same semantics as the Redis script: counted only if every check passes. */
  hitSync(checks: LimitCheck[], nowMs = Date.now()): LimitVerdict {
    const result = this.peek(checks, nowMs);
    if (result.allowed) this.count(checks, nowMs);
    return result;
  }

  /** The verdict a hit would get now, without counting it. */
  peek(checks: LimitCheck[], nowMs = Date.now()): LimitVerdict {
    const counts = checks.map((check) => {
      const position = windowPosition(nowMs, check.windowSeconds);
      const counter = this.counter(check, position.index);
      return estimate(counter.current + 1, counter.previous, position.previousWeight);
    });
    return verdict(checks, counts, 'memory');
  }

  /** Counts a hit another limiter allowed, so this one knows this relay's traffic if it has to take over. */
  count(checks: LimitCheck[], nowMs = Date.now()): void {
    if (this.counters.size > SWEEP_AT) this.sweep(nowMs);
    for (const check of checks) this.counter(check, windowPosition(nowMs, check.windowSeconds).index).current += 1;
  }

  private counter(check: LimitCheck, index: number): Counter {
    const key = `${check.key}:${check.windowSeconds}`;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = { index, current: 0, previous: 0, windowSeconds: check.windowSeconds };
      this.counters.set(key, counter);
    } else if (counter.index !== index) {
      counter.previous = counter.index === index - 1 ? counter.current : 0;
      counter.current = 0;
      counter.index = index;
    }
    return counter;
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

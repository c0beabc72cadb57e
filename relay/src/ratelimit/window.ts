/**
 * Sliding-window estimate shared by the Redis and the in-memory limiter: hits are counted in fixed windows, and
 * the estimate weighs the previous window by the part of it still inside the sliding window. This avoids the 2x
 * burst a plain fixed window allows at its boundary, at the cost of two counters per key.
 */
export interface WindowPosition {
  /** Index of the fixed window `now` falls in. */
  index: number;
  /** Share of the previous window still inside the sliding window, in [0, 1]. */
  previousWeight: number;
}

export function windowPosition(nowMs: number, windowSeconds: number): WindowPosition {
  const windowMs = windowSeconds * 1000;
  const index = Math.floor(nowMs / windowMs);
  const elapsed = (nowMs - index * windowMs) / windowMs;
  return { index, previousWeight: 1 - elapsed };
}

export function estimate(current: number, previous: number, previousWeight: number): number {
  return current + previous * previousWeight;
}

/** One limit to hit: `key` names the counter (scope, rule, subject), without the window index. */
export interface LimitCheck {
  key: string;
  limit: number;
  windowSeconds: number;
}

export interface LimitVerdict {
  allowed: boolean;
  /** Index into the checks of the first limit exceeded. */
  exceeded: number | undefined;
  /** Estimated hits in the sliding window, per check, this hit included. */
  counts: number[];
  backend: 'redis' | 'memory';
}

/** Counts one hit against every check, atomically per backend; a hit over any limit is refused and not counted. */
export interface RateLimiter {
  hit(checks: LimitCheck[], nowMs?: number): Promise<LimitVerdict>;
}

export function verdict(checks: LimitCheck[], counts: number[], backend: 'redis' | 'memory'): LimitVerdict {
  const exceeded = counts.findIndex((count, i) => count > checks[i]!.limit);
  return { allowed: exceeded < 0, exceeded: exceeded < 0 ? undefined : exceeded, counts, backend };
}

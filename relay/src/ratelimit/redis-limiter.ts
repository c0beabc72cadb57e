import type { Redis } from 'ioredis';
import { estimate, verdict, windowPosition, type LimitCheck, type LimitVerdict, type RateLimiter } from './window.js';

/**
 * One round trip per event, atomic: Redis runs the whole script without interleaving, so concurrent hits are
 * each counted exactly once (INCR, never a timestamp-keyed set whose same-millisecond members collapse).
 * KEYS come in pairs per check: [current window counter, previous window counter]; ARGV[i] is that check's
 * counter lifetime in SECONDS (EXPIRE, not PEXPIRE): two windows, so the previous counter outlives its window.
 * Returns, per check, the current and the previous window's counts.
 */
const HIT_SCRIPT = `
local out = {}
for i = 1, #ARGV do
  local current = KEYS[2 * i - 1]
  local n = redis.call('INCR', current)
  if n == 1 then
    redis.call('EXPIRE', current, tonumber(ARGV[i]))
  end
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  out[2 * i - 1] = n
  out[2 * i] = previous
end
return out
`;

/** The client once the script is defined on it (ioredis runs it with EVALSHA, loading it on NOSCRIPT). */
type WithHitScript = Redis & { rateLimitHit(numKeys: number, ...keysAndArgs: Array<string | number>): Promise<number[]> };

/** Sliding-window rate limiter on Redis, shared by every relay using the same Redis and key prefix. */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: WithHitScript;

  constructor(redis: Redis, private readonly prefix: string) {
    redis.defineCommand('rateLimitHit', { lua: HIT_SCRIPT });
    this.redis = redis as WithHitScript;
  }

  /** The Redis key of a check's counter for one fixed window (exposed for tests that inspect TTLs). */
  counterKey(check: LimitCheck, windowIndex: number): string {
    return `${this.prefix}rl:${check.key}:${check.windowSeconds}:${windowIndex}`;
  }

  async hit(checks: LimitCheck[], nowMs = Date.now()): Promise<LimitVerdict> {
    if (checks.length === 0) return verdict(checks, [], 'redis');
    const keys: string[] = [];
    const lifetimes: number[] = [];
    const weights: number[] = [];
    for (const check of checks) {
      const position = windowPosition(nowMs, check.windowSeconds);
      keys.push(this.counterKey(check, position.index), this.counterKey(check, position.index - 1));
      lifetimes.push(check.windowSeconds * 2);
      weights.push(position.previousWeight);
    }
    const raw = await this.redis.rateLimitHit(keys.length, ...keys, ...lifetimes);
    const counts = checks.map((_, i) => estimate(Number(raw[2 * i]), Number(raw[2 * i + 1]), weights[i]!));
    return verdict(checks, counts, 'redis');
  }
}

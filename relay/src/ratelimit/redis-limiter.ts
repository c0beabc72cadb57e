import type { Redis } from 'ioredis';
import { estimate, verdict, windowPosition, type LimitCheck, type LimitVerdict, type RateLimiter } from './window.js';

/**
 * One round trip per event, atomic: Redis runs the whole script without interleaving, so concurrent hits are
 * each counted exactly once (INCR, never a timestamp-keyed set whose same-millisecond members collapse), and
 * check-then-count cannot race. A hit is counted only if it passes every check: refused hits use no quota, so
 * a flooding sender is throttled to its limit rather than starved.
 * KEYS come in pairs per check: [current window counter, previous window counter]. ARGV comes in triples per
 * check: counter lifetime in SECONDS (EXPIRE, not PEXPIRE; two windows, so the previous counter outlives its
 * window), the limit, and the weight of the previous window.
 * Returns [index of the first check exceeded (0: none), then per check: current count, previous count].
 */
const HIT_SCRIPT = `
local checks = #KEYS / 2
local counts = {}
local exceeded = 0
for i = 1, checks do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  counts[2 * i - 1] = current
  counts[2 * i] = previous
  if exceeded == 0 and current + 1 + previous * tonumber(ARGV[3 * i]) > tonumber(ARGV[3 * i - 1]) then
    exceeded = i
  end
end
if exceeded == 0 then
  for i = 1, checks do
    local n = redis.call('INCR', KEYS[2 * i - 1])
    if n == 1 then
      redis.call('EXPIRE', KEYS[2 * i - 1], tonumber(ARGV[3 * i - 2]))
    end
    counts[2 * i - 1] = n
  end
end
local out = { exceeded }
for i = 1, #counts do out[i + 1] = counts[i] end
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
    const args: Array<string | number> = [];
    const weights: number[] = [];
    for (const check of checks) {
      const position = windowPosition(nowMs, check.windowSeconds);
      keys.push(this.counterKey(check, position.index), this.counterKey(check, position.index - 1));
      args.push(check.windowSeconds * 2, check.limit, position.previousWeight.toFixed(6));
      weights.push(position.previousWeight);
    }
    const raw = await this.redis.rateLimitHit(keys.length, ...keys, ...args);
    const exceeded = Number(raw[0]);
    // Estimates as if this hit counted, so a refused hit reports the count that made it exceed the limit.
    const counts = checks.map((_, i) => estimate(Number(raw[1 + 2 * i]) + (exceeded === 0 ? 0 : 1), Number(raw[2 + 2 * i]), weights[i]!));
    return verdict(checks, counts, 'redis');
  }
}

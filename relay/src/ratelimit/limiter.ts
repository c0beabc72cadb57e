import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MemoryRateLimiter } from './memory-limiter.js';
import { RedisRateLimiter } from './redis-limiter.js';
import type { LimitCheck, LimitVerdict, RateLimiter } from './window.js';

/**
 * Redis first (limits shared by every relay on that Redis); the in-memory limiter while Redis is unreachable.
 * While the Redis connection is not ready, hits go straight to memory so a Redis outage adds no latency to
 * publishing; the switch each way is logged once.
 *
 * The memory limiter also counts every hit Redis allows, and is asked first: it knows this relay's own traffic,
 * so a hit it refuses is refused without a round trip, and when Redis drops out (or flaps under load) the limit
 * carries on from the real count instead of starting from zero.
 */
export class FallbackRateLimiter implements RateLimiter {
  readonly memory = new MemoryRateLimiter();
  readonly redisLimiter: RedisRateLimiter;
  private usingMemory = false;

  constructor(private readonly redis: Redis, prefix: string, private readonly log: Logger) {
    this.redisLimiter = new RedisRateLimiter(redis, prefix);
  }

  get backend(): 'redis' | 'memory' {
    return this.usingMemory || this.redis.status !== 'ready' ? 'memory' : 'redis';
  }

  async hit(checks: LimitCheck[], nowMs = Date.now()): Promise<LimitVerdict> {
    const local = this.memory.peek(checks, nowMs);
    if (!local.allowed) return local;
    if (this.redis.status === 'ready') {
      try {
        const result = await this.redisLimiter.hit(checks, nowMs);
        if (this.usingMemory) {
          this.usingMemory = false;
          this.log.info('Redis is back; rate limits are shared through Redis again');
        }
        if (result.allowed) this.memory.count(checks, nowMs);
        return result;
      } catch (err) {
        this.fallBack(err);
      }
    } else {
      this.fallBack(new Error(`Redis connection is ${this.redis.status}`));
    }
    return this.memory.hitSync(checks, nowMs);
  }

  private fallBack(err: unknown): void {
    if (this.usingMemory) return;
    this.usingMemory = true;
    this.log.warn({ err }, 'rate limiter cannot reach Redis; limiting in memory until it is back');
  }
}

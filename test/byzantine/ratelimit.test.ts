// The rate limiter against real Redis: atomic and exact under concurrency (nostream's limiter was neither),
// TTLs in seconds (nostream's lived 1000x too long), and the in-memory fallback while Redis is down.
import t from 'tap';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { freshRedisNamespace } from '../helpers/db.js';
import { startPrivateRedis } from '../helpers/private-instances.js';
import { RedisRateLimiter } from '../../relay/src/ratelimit/redis-limiter.js';
import { MemoryRateLimiter } from '../../relay/src/ratelimit/memory-limiter.js';
import { FallbackRateLimiter } from '../../relay/src/ratelimit/limiter.js';
import { parseRateRule, RateRuleError } from '../../relay/src/ratelimit/rules.js';
import { windowPosition } from '../../relay/src/ratelimit/window.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const silent = pino({ level: 'silent' });

t.test('100 concurrent hits are each counted exactly once, same millisecond included; TTL is in seconds', async (t) => {
  const ns = freshRedisNamespace();
  const redis = new Redis(REDIS_URL);
  t.teardown(async () => {
    redis.disconnect();
    await ns.cleanup();
  });
  const limiter = new RedisRateLimiter(redis, ns.prefix);
  const check = { key: 'peer:0:abc', limit: 1000, windowSeconds: 10 };
  const now = Date.now();
  // Every hit carries the very same timestamp: a timestamp-keyed sorted set would collapse them into one.
  const verdicts = await Promise.all(Array.from({ length: 100 }, () => limiter.hit([check], now)));
  const { index } = windowPosition(now, 10);
  const key = limiter.counterKey(check, index);
  t.equal(await redis.get(key), '100', 'the counter holds exactly 100');
  const currents = verdicts.map((v) => v.counts[0]!).sort((a, b) => a - b);
  t.same(currents, Array.from({ length: 100 }, (_, i) => i + 1), 'every hit saw a distinct count 1..100 (atomic INCR)');
  const ttl = await redis.ttl(key);
  const pttl = await redis.pttl(key);
  t.ok(ttl > 0 && ttl <= 20, `TTL ${ttl} s is within two 10 s windows`);
  t.ok(pttl > 0 && pttl <= 20_000, `PTTL ${pttl} ms is at most 20 000 ms (not 20 000 s)`);
});

t.test('a limit admits exactly `limit` concurrent hits and refuses the rest', async (t) => {
  const ns = freshRedisNamespace();
  const redis = new Redis(REDIS_URL);
  t.teardown(async () => {
    redis.disconnect();
    await ns.cleanup();
  });
  const limiter = new RedisRateLimiter(redis, ns.prefix);
  const check = { key: 'connection:0:1.2.3.4:5', limit: 50, windowSeconds: 60 };
  // Start of a window: the previous window is empty and fully weighted, nothing carries over.
  const now = Math.floor(Date.now() / 60_000) * 60_000 + 1;
  const verdicts = await Promise.all(Array.from({ length: 100 }, () => limiter.hit([check], now)));
  t.equal(verdicts.filter((v) => v.allowed).length, 50, '50 allowed');
  t.equal(verdicts.filter((v) => !v.allowed).length, 50, '50 refused');
  t.ok(verdicts.every((v) => v.backend === 'redis'));
  const key = limiter.counterKey(check, windowPosition(now, 60).index);
  t.equal(await redis.get(key), '50', 'refused hits use no quota: a flooder is throttled to the limit, not starved');
  const both = await limiter.hit([{ key: 'other', limit: 100, windowSeconds: 60 }, check], now);
  t.notOk(both.allowed, 'a hit over any of its limits is refused');
  t.equal(both.exceeded, 1);
  t.equal(await redis.get(limiter.counterKey({ key: 'other', limit: 100, windowSeconds: 60 }, windowPosition(now, 60).index)), null, 'and counted against none');
});

t.test('sliding window: hits of the previous window count by the share still inside the window', async (t) => {
  for (const limiter of [new MemoryRateLimiter()]) {
    const check = { key: 'k', limit: 10, windowSeconds: 10 };
    const start = 1_000_000_000_000; // a window boundary for 10 s windows
    for (let i = 0; i < 10; i++) t.ok((await limiter.hit([check], start + 9000)).allowed);
    t.notOk((await limiter.hit([check], start + 9500)).allowed, 'the 11th hit in the window is refused');
    // 2.5 s into the next window, 75% of the previous window's 10 counted hits still count: 1 + 7.5 <= 10.
    const later = await limiter.hit([check], start + 12_500);
    t.equal(later.counts[0], 1 + 10 * 0.75);
    t.ok((await limiter.hit([check], start + 12_500)).allowed, '1 + 1 + 7.5 <= 10');
    t.notOk((await limiter.hit([check], start + 12_500)).allowed, '3 + 7.5 > 10');
    t.ok(later.allowed);
    // A whole window later the old hits are gone.
    t.equal((await limiter.hit([check], start + 30_000)).counts[0], 1);
  }
});

t.test('falls back to memory while Redis is down and returns to Redis when it is back', async (t) => {
  const privateRedis = await startPrivateRedis();
  const redis = new Redis(privateRedis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 500, retryStrategy: () => 100 });
  redis.on('error', () => {
    // Expected while the private Redis is killed; the limiter's fallback is what this test observes.
  });
  await new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
  const limiter = new FallbackRateLimiter(redis, 'fallback-test:', silent);
  const check = { key: 'peer:0:x', limit: 5, windowSeconds: 60 };
  t.equal((await limiter.hit([check])).backend, 'redis');
  await privateRedis.kill();
  const whileDown = [];
  for (let i = 0; i < 8; i++) whileDown.push(await limiter.hit([check]));
  t.ok(whileDown.every((v) => v.backend === 'memory'), 'memory while Redis is down');
  t.equal(whileDown.filter((v) => v.allowed).length, 4, 'the limit holds in memory, counting the hit Redis took before the outage');
  t.equal(limiter.backend, 'memory');
  await privateRedis.start();
  await new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
  t.equal((await limiter.hit([{ ...check, key: 'peer:0:y' }])).backend, 'redis', 'back to Redis');
  const exhausted = await limiter.hit([check]);
  t.ok(!exhausted.allowed && exhausted.backend === 'memory', 'a limit this relay exhausted is refused locally, without a round trip');
  redis.disconnect();
  // The helper's Redis child is unref'd: hold the event loop open until it has exited.
  const keepAlive = setInterval(() => undefined, 1000);
  await privateRedis.stop();
  clearInterval(keepAlive);
});

t.test('rules parse scope, kind range, count and window; bad rules are refused with a reason', async (t) => {
  t.match(parseRateRule('peer:*:20000/10s'), { scope: 'peer', minKind: 0, limit: 20000, windowSeconds: 10 });
  t.match(parseRateRule('connection:20000-29999:50/1m'), { scope: 'connection', minKind: 20000, maxKind: 29999, limit: 50, windowSeconds: 60 });
  t.match(parseRateRule('pubkey:7:10/1h'), { scope: 'pubkey', minKind: 7, maxKind: 7, windowSeconds: 3600 });
  t.match(parseRateRule('ip:*:100/30'), { windowSeconds: 30 });
  for (const bad of ['peer:*:10', 'nobody:*:1/1s', 'ip:9-1:1/1s', 'ip:*:0/1s', 'ip:*:5/0s', 'ip:x:5/1s']) {
    t.throws(() => parseRateRule(bad), RateRuleError, bad);
  }
});

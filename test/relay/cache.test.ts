import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { RedisEventCache } from '../../relay/src/cache/redis-cache.js';
import type { StoredEvent } from '../../relay/src/storage/types.js';
import { freshRedisNamespace } from '../helpers/db.js';
import { startPrivateRedis } from '../helpers/private-instances.js';

const logger = pino({ level: 'silent' });
const ns = freshRedisNamespace();
t.teardown(() => ns.cleanup());

const keyA = randomBytes(32).toString('hex');
const keyB = randomBytes(32).toString('hex');
let seq = 0;
function mk(p: Partial<Omit<NostrEvent, 'id' | 'sig'>> = {}): StoredEvent {
  const base = {
    pubkey: p.pubkey ?? keyA,
    created_at: p.created_at ?? 1_700_000_000,
    kind: p.kind ?? 1,
    tags: p.tags ?? [],
    content: p.content ?? `c${seq++}`,
  };
  const event: NostrEvent = { id: computeEventId(base), ...base, sig: randomBytes(64).toString('hex') };
  return { event, raw: JSON.stringify({ ...event, extra: 1 }) };
}

const config = { ...DEFAULT_CONFIG, redisUrl: ns.url, redisKeyPrefix: ns.prefix, dedupTtlSeconds: 2, cacheRecentEvents: 50 };
let clock = 1_700_000_000;
const cache = new RedisEventCache(config, logger, { now: () => clock });
t.teardown(() => cache.close());
await cache.waitReady();
const probe = new Redis(ns.url);
t.teardown(() => probe.quit());

t.test('dedup marks expire after dedupTtlSeconds seconds', async (t) => {
  const a = mk();
  const b = mk();
  t.same([...(await cache.seen([a.event.id, b.event.id]))], []);
  await cache.markSeen([a.event.id]);
  t.same([...(await cache.seen([a.event.id, b.event.id]))], [a.event.id]);
  const ttl = await probe.ttl(`${ns.prefix}seen:${a.event.id}`);
  t.ok(ttl > 0 && ttl <= 2, `TTL is in seconds (${ttl})`);
  await new Promise((r) => setTimeout(r, 2100));
  t.same([...(await cache.seen([a.event.id]))], [], 'mark gone after the TTL');
});

t.test('recent events: bounded, filtered, newest first with ties by lowest id', async (t) => {
  const events = Array.from({ length: 60 }, (_, i) => mk({ created_at: 1000 + Math.floor(i / 2), kind: [1, 7, 1111][i % 3]!, tags: i % 5 === 0 ? [['t', 'five']] : [] }));
  await cache.remember(events);
  t.equal(await probe.zcard(`${ns.prefix}recent`), 50, 'trimmed to cacheRecentEvents');
  t.equal(await probe.hlen(`${ns.prefix}recent:raw`), 50, 'raw hash trimmed too');
  const all = await cache.query([{ limit: 100 }]);
  t.equal(all.length, 50);
  const expected = [...events].sort((a, b) => b.event.created_at - a.event.created_at || (a.event.id < b.event.id ? -1 : 1));
  t.same(all.map((s) => s.event.id), expected.slice(0, 50).map((e) => e.event.id));
  t.equal(all[0]!.raw, expected[0]!.raw, 'raw JSON kept');
  const top3 = await cache.query([{ limit: 3 }]);
  t.same(top3.map((s) => s.event.id), expected.slice(0, 3).map((e) => e.event.id));
  const kind1 = await cache.query([{ kinds: [1], since: 1020, until: 1025, limit: 100 }]);
  t.same(kind1.map((s) => s.event.id), expected.filter((e) => e.event.kind === 1 && e.event.created_at >= 1020 && e.event.created_at <= 1025).map((e) => e.event.id));
  const tagged = await cache.query([{ tags: { t: ['five'] }, limit: 2 }, { ids: [events[59]!.event.id] }]);
  t.same(tagged.map((s) => s.event.id), [events[59]!.event.id, ...expected.filter((e) => e.event.tags.length > 0).slice(0, 2).map((e) => e.event.id)].sort((a, b) => {
    const ea = events.find((e) => e.event.id === a)!.event;
    const eb = events.find((e) => e.event.id === b)!.event;
    return eb.created_at - ea.created_at || (a < b ? -1 : 1);
  }));
  t.same(await cache.query([{ limit: 0 }]), []);
});

t.test('replaceable versions and deletions in the cache', async (t) => {
  const pk = randomBytes(32).toString('hex');
  const v1 = mk({ pubkey: pk, kind: 0, created_at: 2_000_000_000 });
  const v2 = mk({ pubkey: pk, kind: 0, created_at: 2_000_000_001 });
  await cache.remember([v2]);
  await cache.remember([v1]);
  t.same((await cache.query([{ authors: [pk], kinds: [0] }])).map((s) => s.event.id), [v2.event.id], 'older version not cached');
  const note = mk({ pubkey: pk, created_at: 2_000_000_000 });
  const foreign = mk({ pubkey: keyB, created_at: 2_000_000_000 });
  await cache.remember([note, foreign]);
  await cache.remember([mk({ pubkey: pk, kind: 5, created_at: 2_000_000_002, tags: [['e', note.event.id], ['e', foreign.event.id], ['a', `0:${pk}:`]] })]);
  const left = (await cache.query([{ ids: [note.event.id, foreign.event.id, v2.event.id] }])).map((s) => s.event.id);
  t.same(left, [foreign.event.id], 'own events deleted, others kept');
});

t.test('expired events are not served', async (t) => {
  const exp = mk({ created_at: 2_100_000_000, tags: [['expiration', String(clock + 5)]] });
  await cache.remember([exp]);
  t.equal((await cache.query([{ ids: [exp.event.id] }])).length, 1);
  clock += 10;
  t.equal((await cache.query([{ ids: [exp.event.id] }])).length, 0);
});

t.test('Redis down: every call fails fast with an error; recovers when Redis is back', async (t) => {
  const r = await startPrivateRedis();
  t.teardown(() => r.stop());
  const c = new RedisEventCache({ ...config, redisUrl: r.url }, logger);
  t.teardown(() => c.close());
  await c.waitReady();
  const ev = mk();
  await c.markSeen([ev.event.id]);
  await r.kill();
  const started = Date.now();
  await t.rejects(c.seen([ev.event.id]), { name: 'CacheError' });
  await t.rejects(c.markSeen([ev.event.id]), { name: 'CacheError' });
  await t.rejects(c.remember([ev]), { name: 'CacheError' });
  await t.rejects(c.query([{ limit: 5 }]), { name: 'CacheError' });
  await t.rejects(c.ping(), { name: 'CacheError' });
  t.ok(Date.now() - started < 3000, `failed fast (${Date.now() - started} ms)`);
  await r.start();
  await c.waitReady(10_000);
  await c.ping();
  t.same([...(await c.seen([ev.event.id]))], [], 'restarted Redis is empty (no persistence)');
  await c.markSeen([ev.event.id]);
  t.same([...(await c.seen([ev.event.id]))], [ev.event.id], 'works again');
});

t.test('a lowered bound trims more entries than Lua can unpack at once', async (t) => {
  const big = new RedisEventCache({ ...config, cacheRecentEvents: 8500 }, logger);
  t.teardown(() => big.close());
  await big.waitReady();
  const many = Array.from({ length: 8500 }, (_, i) => mk({ created_at: 3_000_000_000 + i }));
  for (let i = 0; i < many.length; i += 2000) await big.remember(many.slice(i, i + 2000));
  t.ok((await probe.zcard(`${ns.prefix}recent`)) >= 8500);
  await cache.remember([mk({ created_at: 3_100_000_000 })]);
  t.equal(await probe.zcard(`${ns.prefix}recent`), 50);
  t.equal(await probe.hlen(`${ns.prefix}recent:raw`), 50);
});

// The pipeline's cache calls, coalesced: many concurrent lookups and writes become one call each per event-loop
// turn (one Redis command per batch), against the real Redis cache; a batch holding two versions of one address
// keeps the newer (the multi-event script applies them in order); a failing Redis fails every caller of a batch.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { RedisEventCache } from '../../relay/src/cache/redis-cache.js';
import { CacheBatcher } from '../../relay/src/ingest/cache-batcher.js';
import type { StoredEvent } from '../../relay/src/storage/types.js';
import { freshRedisNamespace } from '../helpers/db.js';

const logger = pino({ level: 'silent' });
const ns = freshRedisNamespace();
t.teardown(() => ns.cleanup());
const cache = new RedisEventCache({ ...DEFAULT_CONFIG, redisUrl: ns.url, redisKeyPrefix: ns.prefix, cacheRecentEvents: 1000 }, logger);
t.teardown(() => cache.close());
await cache.waitReady();

const pubkey = randomBytes(32).toString('hex');
let seq = 0;
function mk(kind = 1, created_at = 1_700_000_000, tags: string[][] = []): StoredEvent {
  const base = { pubkey, created_at, kind, tags, content: `c${seq++}` };
  const event: NostrEvent = { id: computeEventId(base), ...base, sig: randomBytes(64).toString('hex') };
  return { event, raw: JSON.stringify(event) };
}

/** Counts calls into the real cache. */
function counted() {
  const calls = { seen: [] as number[], markSeen: [] as number[], remember: [] as number[] };
  const proxy = {
    seen: (ids: string[]) => (calls.seen.push(ids.length), cache.seen(ids)),
    markSeen: (ids: string[]) => (calls.markSeen.push(ids.length), cache.markSeen(ids)),
    remember: (items: StoredEvent[]) => (calls.remember.push(items.length), cache.remember(items)),
  };
  return { calls, proxy: proxy as unknown as typeof cache };
}

t.test('100 concurrent writes and lookups: one call each, and the right answers', async (t) => {
  const { calls, proxy } = counted();
  const errors: unknown[] = [];
  const b = new CacheBatcher(proxy, (err) => errors.push(err));
  const items = Array.from({ length: 100 }, () => mk());
  items.forEach((item, i) => b.remember(item, i % 2 === 0));
  await new Promise((r) => setTimeout(r, 50));
  t.same(calls.markSeen, [50], 'one markSeen for the 50 marked events');
  t.same(calls.remember, [100], 'one remember for all 100');
  const seen = await Promise.all(items.map((item) => b.seen(item.event.id)));
  t.same(calls.seen, [100], 'one lookup for 100 concurrent checks');
  t.same(seen, items.map((_, i) => i % 2 === 0), 'marked ones seen, the others not');
  const cached = await cache.query([{ ids: items.map((i) => i.event.id) }]);
  t.equal(cached.length, 100, 'every event is in the recent cache');
  t.same(errors, []);
});

t.test('two versions of one address in one batch: the newer stays, whatever the order', async (t) => {
  const b = new CacheBatcher(cache, () => undefined);
  const newer = mk(30023, 1_700_000_100, [['d', 'x']]);
  const older = mk(30023, 1_700_000_050, [['d', 'x']]);
  b.remember(newer, false);
  b.remember(older, false);
  await new Promise((r) => setTimeout(r, 50));
  const got = await cache.query([{ kinds: [30023], authors: [pubkey], '#d': ['x'] } as never]);
  t.same(got.map((g) => g.event.id), [newer.event.id]);
});

t.test('a Redis that fails fails every caller of the batch (they fall back to PostgreSQL)', async (t) => {
  const dead = new RedisEventCache({ ...DEFAULT_CONFIG, redisUrl: 'redis://127.0.0.1:9', redisKeyPrefix: ns.prefix }, logger, { redis: { retryStrategy: () => null, connectTimeout: 200 } });
  t.teardown(() => dead.close());
  const errors: unknown[] = [];
  const b = new CacheBatcher(dead, (err) => errors.push(err));
  const results = await Promise.allSettled([b.seen('a'.repeat(64)), b.seen('b'.repeat(64)), b.seen('c'.repeat(64))]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
  b.remember(mk(), true);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(errors.length, 1, 'one write error for the batch, reported, not thrown');
});

import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { RedisEventCache } from '../../relay/src/cache/redis-cache.js';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { StorageFaults } from '../../relay/src/degraded/storage-faults.js';
import { DependencyProbe } from '../../relay/src/health/dependency-probe.js';
import { RelayMetrics } from '../../relay/src/metrics/registry.js';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';
import { Journal, encodeRecord } from '../../relay/src/storage/journal.js';
import { PgEventStore } from '../../relay/src/storage/pg-event-store.js';
import type { StoredEvent } from '../../relay/src/storage/types.js';
import { freshDatabase, freshRedisNamespace } from '../helpers/db.js';
import { freePort } from '../helpers/private-instances.js';
import { until } from './helpers/workload.js';

// Storage faults exercised on the resilient store itself, against the real PostgreSQL and Redis: pool exhaustion,
// slow queries, a full disk (ENOSPC from /dev/full), torn and corrupt journal records, kind rules at replay.
const logger = pino({ level: process.env.OUTAGE_TEST_LOG ?? 'silent' });
const pubkey = randomBytes(32).toString('hex');

function mk(p: Partial<Omit<NostrEvent, 'id' | 'sig'>> = {}): StoredEvent {
  const base = { pubkey, created_at: p.created_at ?? Math.floor(Date.now() / 1000), kind: p.kind ?? 1, tags: p.tags ?? [], content: p.content ?? randomBytes(8).toString('hex') };
  const event: NostrEvent = { id: computeEventId(base), ...base, sig: randomBytes(64).toString('hex') };
  return { event, raw: JSON.stringify(event) };
}

interface Harness {
  faults: StorageFaults;
  pgStore: PgEventStore;
  metrics: RelayMetrics;
  dataDir: string;
  close(): Promise<void>;
}

async function harness(t: Test, over: Partial<typeof DEFAULT_CONFIG> & { databaseUrl: string }): Promise<Harness> {
  const ns = freshRedisNamespace();
  const dataDir = over.dataDir ?? mkdtempSync(join(tmpdir(), 'store-faults-'));
  const config = { ...DEFAULT_CONFIG, redisUrl: ns.url, redisKeyPrefix: ns.prefix, dataDir, ...over };
  const metrics = new RelayMetrics();
  const pgStore = new PgEventStore(config, logger, { pingTimeoutMs: 300 });
  const redis = new RedisEventCache(config, logger);
  const dbProbe = new DependencyProbe('database', () => pgStore.ping(), 100, logger, 300);
  const cacheProbe = new DependencyProbe('cache', () => redis.ping(), 100, logger, 300);
  const faults = new StorageFaults({ config, pg: pgStore, redis, dbProbe, cacheProbe, metrics, logger });
  await faults.store.migrate();
  await dbProbe.check();
  dbProbe.start();
  cacheProbe.start();
  const h = {
    faults, pgStore, metrics, dataDir,
    async close() {
      dbProbe.stop();
      cacheProbe.stop();
      await faults.store.close();
      await faults.cache.close();
      await ns.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  t.teardown(() => h.close());
  return h;
}

async function counter(metrics: RelayMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((a, v) => a + v.value, 0);
}

t.test('pool exhaustion: saves go to the journal, replay later; an older replaceable is refused at replay and recorded', async (t) => {
  const db = await freshDatabase('outage_pool');
  t.teardown(() => db.drop());
  const h = await harness(t, { databaseUrl: db.url, dbPoolSize: 2, dbWritePoolSize: 2, dbConnectTimeoutMs: 300 });
  const store = h.faults.store;
  const newer = mk({ kind: 10002, created_at: 1_700_000_100 });
  t.same(await store.save(newer), { status: 'stored' }, 'normal mode: straight to PostgreSQL');
  t.equal(store.mode, 'normal');

  // Writes have their own pool: exhaust that one.
  const held = [await h.pgStore.writePool.connect(), await h.pgStore.writePool.connect()];
  const older = mk({ kind: 10002, created_at: 1_700_000_000 });
  const plain = mk();
  t.same(await store.save(plain), { status: 'stored' }, 'pool exhausted: acknowledged from the journal');
  t.same(await store.save(older), { status: 'stored' }, 'an older replaceable cannot be judged now: journaled');
  t.equal(store.mode, 'degraded');
  t.equal(h.faults.journal.pendingCount, 2);
  // The probe has its own connection, so this is the pool's wait giving up, not an outage.
  t.ok((await counter(h.metrics, 'relay_saves_diverted_total', { code: 'pool-exhausted' })) >= 1, 'diverted saves counted as pool-exhausted');

  for (const c of held) c.release();
  await until('normal mode', async () => store.mode === 'normal', 10_000);
  const rows = await h.pgStore.pool.query<{ id: string }>('SELECT id FROM events');
  t.same(new Set(rows.rows.map((r) => r.id)), new Set([newer.event.id, plain.event.id]), 'replayed; the older version lost to the newer');
  t.equal(store.refusedTotal, 1, 'the refusal is counted');
  const refused = readFileSync(join(h.dataDir, 'replay-refused.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; reason: string });
  t.equal(refused.length, 1);
  t.equal(refused[0]!.id, older.event.id, 'and recorded with its id');
  t.match(refused[0]!.reason, /^invalid: a newer version/);
  t.equal(await counter(h.metrics, 'relay_replay_refused_total'), 1);
});

t.test('slow queries: statement timeouts divert saves, lookups give up in time, replay waits until PostgreSQL keeps up', async (t) => {
  const db = await freshDatabase('outage_slow');
  t.teardown(() => db.drop());
  const h = await harness(t, { databaseUrl: db.url, dbStatementTimeoutMs: 300, dbConnectTimeoutMs: 300 });
  const store = h.faults.store;
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  t.teardown(() => locker.end());
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');

  const item = mk();
  const started = Date.now();
  t.same(await store.save(item), { status: 'stored' }, 'acknowledged from the journal after the statement timeout');
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
  t.ok((await counter(h.metrics, 'relay_saves_diverted_total', { code: 'statement-timeout' })) >= 1, 'counted as a statement timeout');
  await t.rejects(store.lookup([mk().event.id]), { code: /lookup-timeout|statement-timeout/ }, 'a lookup does not hang');
  t.same([...(await store.lookup([item.event.id])).entries()], [[item.event.id, 'stored']], 'the journal answers for its own events');
  await new Promise((r) => setTimeout(r, 800));
  t.equal(store.mode, 'degraded', 'still degraded while writes time out');

  await locker.query('COMMIT');
  await until('normal mode', async () => store.mode === 'normal', 10_000);
  const rows = await h.pgStore.pool.query('SELECT 1 FROM events WHERE id = $1', [item.event.id]);
  t.equal(rows.rowCount, 1, 'replayed once PostgreSQL keeps up');
});

t.test('disk full: ENOSPC from the journal is OK false material, counted, and the journal keeps working after', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'store-faults-enospc-'));
  mkdirSync(join(dataDir, 'journal'));
  // /dev/full answers every write with ENOSPC: the kernel's own disk-full error, no simulation in our code.
  symlinkSync('/dev/full', join(dataDir, 'journal', 'journal.log'));
  const deadPort = await freePort();
  const h = await harness(t, { databaseUrl: `postgres://postgres@127.0.0.1:${deadPort}/none`, dbConnectTimeoutMs: 300, dataDir });
  const store = h.faults.store;
  t.equal(store.mode, 'degraded', 'PostgreSQL unreachable at start: degraded');
  await t.rejects(store.save(mk()), { name: 'StorageError', code: 'disk-full' }, 'refused, never acknowledged');
  t.equal(await counter(h.metrics, 'relay_journal_errors_total', { code: 'disk-full' }), 1, 'counted');
  t.equal(h.faults.journal.pendingCount, 0, 'nothing pending for an event that was refused');
});

t.test('journal records: a torn tail and a corrupt record in the middle are found, logged, counted and cut off', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-records-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const events = [mk(), mk(), mk()];
  const records = events.map((e) => encodeRecord(e.raw));
  const file = join(dir, 'journal.log');

  const errors: string[] = [];
  const open = async () => {
    const j = new Journal({ dir, maxBytes: 1 << 20, logger, onError: (c) => errors.push(c) });
    const report = await j.open();
    return { j, report };
  };

  // Torn: the third record's payload stops half way.
  writeFileSync(file, Buffer.concat([records[0]!, records[1]!, records[2]!.subarray(0, records[2]!.length - 7)]));
  let { j, report } = await open();
  t.equal(report.records, 2);
  t.equal(report.corruptAt, records[0]!.length + records[1]!.length);
  t.match(report.reason, /truncated payload/);
  t.equal(statSync(file).size, report.bytes, 'torn tail cut off');
  t.same(j.pending().map((e) => e.id), [events[0]!.event.id, events[1]!.event.id]);
  // Appends continue cleanly after the cut.
  await j.append(events[2]!);
  await j.close();
  ({ j, report } = await open());
  t.equal(report.records, 3, 'the re-appended record follows the cut');
  t.equal(report.discardedBytes, 0);
  await j.close();

  // Corrupt: one flipped payload byte in the middle record; its checksum no longer matches.
  const bad = Buffer.from(records[1]!);
  bad[bad.length - 3] ^= 0x01;
  writeFileSync(file, Buffer.concat([records[0]!, bad, records[2]!]));
  ({ j, report } = await open());
  t.equal(report.records, 1, 'replay stops at the first bad record');
  t.match(report.reason, /checksum mismatch/);
  t.same(errors, ['corrupt-record', 'corrupt-record'], 'each discovery counted');
  await j.close();

  // Full: the size cap refuses before writing.
  writeFileSync(file, '');
  const small = new Journal({ dir, maxBytes: records[0]!.length + 10, logger, onError: (c) => errors.push(c) });
  await small.open();
  await small.append(events[0]!);
  await t.rejects(small.append(events[1]!), { code: 'journal-full' });
  t.equal(statSync(file).size, records[0]!.length, 'nothing written past the cap');
  await small.close();
});

t.test('degraded reads: merged answers follow the kind rules PostgreSQL would apply', async (t) => {
  const { mergeForFilters } = await import('../../relay/src/degraded/merge.js');
  const v1 = mk({ kind: 0, created_at: 100 });
  const v2 = mk({ kind: 0, created_at: 200 });
  const note = mk({ created_at: 150 });
  const gone = mk({ created_at: 160 });
  const deletion = mk({ kind: 5, created_at: 170, tags: [['e', gone.event.id]] });
  const expired = mk({ created_at: 180, tags: [['expiration', '1']] });
  // Two sources (say, the Redis cache and the journal) overlapping on `note`.
  const merged = mergeForFilters([{ kinds: [0, 1], limit: 10 }], [[v1, note, gone], [v2, note, deletion, expired]]);
  t.same(merged.map((i) => i.event.id), [v2.event.id, note.event.id], 'newest version only, one copy, deleted and expired left out');
  const limited = mergeForFilters([{ kinds: [0, 1], limit: 1 }, { kinds: [5], limit: 5 }], [[v1, v2, note, deletion]]);
  t.same(limited.map((i) => i.event.id), [v2.event.id, deletion.event.id], 'limits apply per filter, results newest first');
});

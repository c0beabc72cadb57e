import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { PgEventStore, REASON_DELETED, REASON_NEWER, WRITE_LOCK, toStorageError } from '../../relay/src/storage/pg-event-store.js';
import { StorageError, type StoredEvent } from '../../relay/src/storage/types.js';
import { freshDatabase } from '../helpers/db.js';

const logger = pino({ level: 'silent' });
const db = await freshDatabase('storage');

const config = { ...DEFAULT_CONFIG, databaseUrl: db.url, dbPoolSize: 6, dbBatchSize: 500 };
let clock = Math.floor(Date.now() / 1000);
const store = new PgEventStore(config, logger, { now: () => clock });
const admin = new pg.Pool({ connectionString: db.url, max: 2 });
t.teardown(async () => {
  await store.close();
  await admin.end();
  await db.drop();
});
await store.migrate();
// Idempotent, and safe when several relays start at once.
const twin = new PgEventStore(config, logger);
await Promise.all([store.migrate(), twin.migrate()]);
await twin.close();

const keyA = randomBytes(32).toString('hex');
const keyB = randomBytes(32).toString('hex');
let seq = 0;

function mk(p: Partial<Omit<NostrEvent, 'id' | 'sig'>> = {}): StoredEvent {
  const base = {
    pubkey: p.pubkey ?? keyA,
    created_at: p.created_at ?? 1_700_000_000,
    kind: p.kind ?? 1,
    tags: p.tags ?? [],
    content: p.content ?? `note ${seq++} ${randomBytes(4).toString('hex')}`,
  };
  const event: NostrEvent = { id: computeEventId(base), ...base, sig: randomBytes(64).toString('hex') };
  return { event, raw: JSON.stringify(event) };
}

/** An event with a chosen id, for deterministic tie-breaking tests (the store does not verify ids). */
function withId(item: StoredEvent, id: string): StoredEvent {
  const event = { ...item.event, id };
  return { event, raw: JSON.stringify(event) };
}

async function ids(filter: Parameters<typeof store.query>[0][number]): Promise<string[]> {
  return (await store.query([filter])).map((s) => s.event.id);
}

t.test('schema_migrations records the migration once', async (t) => {
  const r = await admin.query('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version');
  t.same(r.rows[0], { version: 1, n: 1 });
  t.ok(r.rows.every((row: { n: number }) => row.n === 1), 'each migration applied once');
});

t.test('stored, duplicate, lookup and raw preserved', async (t) => {
  const ev = mk({ tags: [['t', 'x']] });
  const extra = { ...JSON.parse(ev.raw), extra_field: 'kept' };
  const item = { event: ev.event, raw: JSON.stringify(extra) };
  t.same(await store.save(item), { status: 'stored' });
  t.same(await store.save(item), { status: 'duplicate' });
  const [a, b] = await Promise.all([store.save(item), store.save(item)]);
  t.same([a, b], [{ status: 'duplicate' }, { status: 'duplicate' }]);
  const other = mk();
  const [m1, m2] = await Promise.all([store.lookup([ev.event.id, other.event.id]), store.lookup([ev.event.id])]);
  t.same([...m1], [[ev.event.id, 'stored']]);
  t.same([...m2], [[ev.event.id, 'stored']]);
  const got = await store.query([{ ids: [ev.event.id] }]);
  t.equal(got.length, 1);
  t.equal(got[0]!.raw, item.raw, 'exact JSON served');
  t.same(got[0]!.event, extra);
});

t.test('same id twice in one batch: one stored, one duplicate', async (t) => {
  const ev = mk();
  const outcomes = await Promise.all([store.save(ev), store.save(ev)]);
  t.same(outcomes.map((o) => o.status).sort(), ['duplicate', 'stored']);
});

t.test('group commit: 5000 concurrent saves in few transactions, fast', async (t) => {
  const before = store.stats.transactions;
  const events = Array.from({ length: 5000 }, (_, i) => mk({ created_at: 1_600_000_000 + i, tags: [['t', 'bulk'], ['p', keyB]] }));
  const started = performance.now();
  const outcomes = await Promise.all(events.map((e) => store.save(e)));
  const ms = performance.now() - started;
  t.ok(outcomes.every((o) => o.status === 'stored'));
  const txs = store.stats.transactions - before;
  t.ok(txs <= 15, `${txs} transactions for 5000 saves`);
  t.comment(`5000 saves in ${ms.toFixed(0)} ms = ${Math.round(5000 / (ms / 1000))} events/s in ${txs} transactions`);
  // Speed is the benchmark's business (bench/ingest); the transaction count above is the behaviour under test.
  const r = await admin.query("SELECT count(*)::int AS n FROM event_tags WHERE name = 't' AND value = 'bulk'");
  t.equal(r.rows[0].n, 5000);
});

t.test('OK only after COMMIT: a failing transaction rejects every caller', async (t) => {
  // Hold the write lock so the store's batch waits inside its transaction, then kill that backend.
  const holder = await admin.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [WRITE_LOCK[0], WRITE_LOCK[1]]);
  const events = Array.from({ length: 20 }, () => mk());
  const pending = events.map((e) => store.save(e).then((o) => ({ ok: o }), (err: unknown) => ({ err })));
  let pid: number | undefined;
  for (let i = 0; i < 100 && pid === undefined; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const r = await admin.query(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'nostr-relay-store' AND wait_event_type = 'Lock' AND datname = current_database()",
    );
    pid = r.rows[0]?.pid;
  }
  t.ok(pid, 'batch is waiting inside its transaction');
  await admin.query('SELECT pg_terminate_backend($1)', [pid]);
  await holder.query('ROLLBACK');
  holder.release();
  const results = await Promise.all(pending);
  for (const r of results) {
    t.ok('err' in r && r.err instanceof StorageError, 'rejected with StorageError');
  }
  t.equal((results[0] as { err: StorageError }).err.code, 'admin-shutdown');
  const found = await store.lookup(events.map((e) => e.event.id));
  t.equal(found.size, 0, 'nothing was stored');
  // The store recovers: the next batch uses a fresh connection.
  t.same(await store.save(events[0]!), { status: 'stored' });
});

t.test('replaceable: newest wins, ties lowest id, loser tombstoned', async (t) => {
  const pk = randomBytes(32).toString('hex');
  const v1 = mk({ pubkey: pk, kind: 0, created_at: 100 });
  const v2 = mk({ pubkey: pk, kind: 0, created_at: 200 });
  t.same(await store.save(v1), { status: 'stored' });
  t.same(await store.save(v2), { status: 'stored' });
  t.same(await ids({ authors: [pk], kinds: [0] }), [v2.event.id]);
  t.same(await store.save(v1), { status: 'rejected', reason: REASON_NEWER }, 'replaced version refused');
  t.same([...(await store.lookup([v1.event.id]))], [[v1.event.id, 'deleted']]);
  const older = mk({ pubkey: pk, kind: 0, created_at: 150 });
  t.same(await store.save(older), { status: 'rejected', reason: REASON_NEWER });

  const low = withId(mk({ pubkey: pk, kind: 10002, created_at: 500 }), '0'.repeat(63) + '1');
  const high = withId(mk({ pubkey: pk, kind: 10002, created_at: 500 }), 'f'.repeat(64));
  t.same(await store.save(high), { status: 'stored' });
  t.same(await store.save(low), { status: 'stored' }, 'equal created_at, lower id wins');
  t.same(await ids({ authors: [pk], kinds: [10002] }), [low.event.id]);
  const high2 = withId(mk({ pubkey: pk, kind: 10002, created_at: 500 }), 'e'.repeat(64));
  t.same(await store.save(high2), { status: 'rejected', reason: REASON_NEWER });
});

t.test('replaceable: concurrent versions in one batch and across stores', async (t) => {
  const pk = randomBytes(32).toString('hex');
  const versions = Array.from({ length: 30 }, (_, i) => mk({ pubkey: pk, kind: 3, created_at: 1000 + (i % 10) }));
  const second = new PgEventStore({ ...config, dbBatchSize: 3 }, logger);
  t.teardown(() => second.close());
  const outcomes = await Promise.all(versions.map((v, i) => (i % 2 ? store : second).save(v)));
  const newest = versions.filter((v) => v.event.created_at === 1009).sort((a, b) => (a.event.id < b.event.id ? -1 : 1))[0]!;
  const stored = await ids({ authors: [pk], kinds: [3] });
  t.same(stored, [newest.event.id], 'exactly the newest version remains');
  const r = await admin.query('SELECT count(*)::int AS n FROM events WHERE pubkey = $1', [pk]);
  t.equal(r.rows[0].n, 1);
  t.equal(outcomes[versions.indexOf(newest)]!.status, 'stored');
  for (const [i, o] of outcomes.entries()) {
    if (versions[i] !== newest && o.status === 'rejected') t.equal(o.reason, REASON_NEWER);
  }
});

t.test('addressable: keyed by d tag', async (t) => {
  const pk = randomBytes(32).toString('hex');
  const a1 = mk({ pubkey: pk, kind: 30023, created_at: 10, tags: [['d', 'one']] });
  const a2 = mk({ pubkey: pk, kind: 30023, created_at: 20, tags: [['d', 'one']] });
  const b1 = mk({ pubkey: pk, kind: 30023, created_at: 5, tags: [['d', 'two']] });
  const noD = mk({ pubkey: pk, kind: 30023, created_at: 5 });
  const emptyD = mk({ pubkey: pk, kind: 30023, created_at: 6, tags: [['d', '']] });
  const outcomes = await Promise.all([a1, a2, b1, noD, emptyD].map((e) => store.save(e)));
  t.same(outcomes.map((o) => o.status), ['rejected', 'stored', 'stored', 'rejected', 'stored']);
  t.same((await ids({ authors: [pk] })).sort(), [a2.event.id, b1.event.id, emptyD.event.id].sort());
});

t.test('NIP-09 deletion by e tag: same author only; resubmission blocked; pending deletion', async (t) => {
  const mine = mk({ pubkey: keyA });
  const theirs = mk({ pubkey: keyB });
  await Promise.all([store.save(mine), store.save(theirs)]);
  const later = mk({ pubkey: keyA, created_at: 1_700_000_100 });
  const del = mk({ pubkey: keyA, kind: 5, tags: [['e', mine.event.id], ['e', theirs.event.id], ['e', later.event.id]] });
  t.same(await store.save(del), { status: 'stored' });
  t.same(await ids({ ids: [mine.event.id, theirs.event.id, del.event.id] }), [del.event.id, theirs.event.id].sort());
  t.same([...(await store.lookup([mine.event.id, theirs.event.id]))].sort(), [[mine.event.id, 'deleted'], [theirs.event.id, 'stored']].sort());
  t.same(await store.save(mine), { status: 'rejected', reason: REASON_DELETED });
  t.same(await store.save(later), { status: 'rejected', reason: REASON_DELETED }, 'deletion that arrived first applies');
  // Someone else's deletion of a not-yet-seen event must not block it.
  const future = mk({ pubkey: keyA });
  const forged = mk({ pubkey: keyB, kind: 5, tags: [['e', future.event.id]] });
  await store.save(forged);
  t.same(await store.save(future), { status: 'stored' });
  // Deleting a deletion is ignored.
  const delDel = mk({ pubkey: keyA, kind: 5, tags: [['e', del.event.id]] });
  await store.save(delDel);
  t.same(await ids({ ids: [del.event.id] }), [del.event.id]);
});

t.test('NIP-09 deletion by a tag: versions up to created_at, same author only', async (t) => {
  const pk = randomBytes(32).toString('hex');
  const v = mk({ pubkey: pk, kind: 30001, created_at: 100, tags: [['d', 'list:with:colons']] });
  const other = mk({ pubkey: pk, kind: 30001, created_at: 100, tags: [['d', 'keep']] });
  await Promise.all([store.save(v), store.save(other)]);
  const notMine = mk({ pubkey: keyB, kind: 5, created_at: 300, tags: [['a', `30001:${pk}:list:with:colons`]] });
  await store.save(notMine);
  t.same(await ids({ ids: [v.event.id] }), [v.event.id], 'other author cannot delete');
  const del = mk({ pubkey: pk, kind: 5, created_at: 200, tags: [['a', `30001:${pk}:list:with:colons`]] });
  t.same(await store.save(del), { status: 'stored' });
  t.same(await ids({ ids: [v.event.id, other.event.id] }), [other.event.id]);
  const older = mk({ pubkey: pk, kind: 30001, created_at: 200, tags: [['d', 'list:with:colons']] });
  t.same(await store.save(older), { status: 'rejected', reason: REASON_DELETED }, 'version at the deletion time refused');
  const newer = mk({ pubkey: pk, kind: 30001, created_at: 201, tags: [['d', 'list:with:colons']] });
  t.same(await store.save(newer), { status: 'stored' }, 'later version accepted');
  // Replaceable kinds via a tag with empty d.
  const meta = mk({ pubkey: pk, kind: 0, created_at: 50 });
  await store.save(meta);
  await store.save(mk({ pubkey: pk, kind: 5, created_at: 60, tags: [['a', `0:${pk}:`]] }));
  t.same(await ids({ authors: [pk], kinds: [0] }), []);
});

t.test('deletion racing its target on two stores never leaves the target behind', async (t) => {
  const other = new PgEventStore(config, logger);
  t.teardown(() => other.close());
  const pairs = Array.from({ length: 40 }, () => {
    const target = mk({ pubkey: keyA });
    return { target, del: mk({ pubkey: keyA, kind: 5, tags: [['e', target.event.id]] }) };
  });
  await Promise.all(pairs.flatMap(({ target, del }, i) => (i % 2 ? [store.save(target), other.save(del)] : [other.save(del), store.save(target)])));
  t.same(await ids({ ids: pairs.map((p) => p.target.event.id) }), [], 'every target deleted');
  const states = await store.lookup(pairs.map((p) => p.target.event.id));
  t.ok([...states.values()].every((s) => s === 'deleted'));
});

t.test('deletion and target in the same batch', async (t) => {
  const target = mk({ pubkey: keyA });
  const del = mk({ pubkey: keyA, kind: 5, tags: [['e', target.event.id]] });
  await Promise.all([store.save(target), store.save(del)]);
  t.same(await ids({ ids: [target.event.id] }), []);
  t.same(await store.save(target), { status: 'rejected', reason: REASON_DELETED });
});

t.test('ephemeral refused defensively; expiration', async (t) => {
  const eph = await store.save(mk({ kind: 20001 }));
  t.equal(eph.status, 'rejected');
  t.match((eph as { reason: string }).reason, /^invalid:/);
  const expired = await store.save(mk({ tags: [['expiration', String(clock - 1)]] }));
  t.match(expired, { status: 'rejected', reason: /^invalid:/ });
  const soon = mk({ kind: 7777, tags: [['expiration', String(clock + 10)]] });
  t.same(await store.save(soon), { status: 'stored' });
  t.same(await ids({ kinds: [7777] }), [soon.event.id]);
  clock += 20;
  t.teardown(() => {
    clock -= 20;
  });
  t.same(await ids({ kinds: [7777] }), [], 'expired event left out');
});

t.test('filters', async (t) => {
  const pk = randomBytes(32).toString('hex');
  const e1 = mk({ pubkey: pk, kind: 1, created_at: 10, tags: [['t', 'nostr'], ['p', keyB]] });
  const e2 = mk({ pubkey: pk, kind: 7, created_at: 20, tags: [['t', 'relay'], ['e', 'x'.repeat(3)]] });
  const e3 = mk({ pubkey: pk, kind: 1, created_at: 30, tags: [['t', "'; DROP TABLE events; --"]] });
  const e4 = mk({ pubkey: pk, kind: 1, created_at: 30, tags: [['T', 'upper'], ['t', 'nostr']] });
  await Promise.all([e1, e2, e3, e4].map((e) => store.save(e)));
  const tie = [e3.event.id, e4.event.id].sort();
  t.same(await ids({ authors: [pk] }), [...tie, e2.event.id, e1.event.id], 'newest first, ties lowest id');
  t.same(await ids({ authors: [pk], limit: 2 }), tie);
  t.same(await ids({ authors: [pk], limit: 0 }), []);
  t.same(await ids({ authors: [pk], kinds: [7] }), [e2.event.id]);
  t.same(await ids({ authors: [pk], since: 20, until: 20 }), [e2.event.id], 'since/until inclusive');
  t.same(await ids({ authors: [pk], since: -Number.MAX_SAFE_INTEGER, until: Number.MAX_SAFE_INTEGER }).then((r) => r.length), 4);
  t.same(await ids({ authors: [pk], since: 1e300 }), [], 'huge since clamps');
  t.same(await ids({ authors: [pk], until: -5 }), []);
  t.same(await ids({ authors: [pk], tags: { t: ['nostr', 'relay'] } }), [e4.event.id, e2.event.id, e1.event.id]);
  t.same(await ids({ authors: [pk], tags: { t: ['nostr'], p: [keyB] } }), [e1.event.id], 'AND across letters');
  t.same(await ids({ authors: [pk], tags: { T: ['upper'] } }), [e4.event.id], 'tag letters are case-sensitive');
  t.same(await ids({ tags: { t: ["'; DROP TABLE events; --"] } }), [e3.event.id], 'SQL-looking value is just a value');
  t.same(await ids({ tags: { t: ["' OR 1=1 --"] } }), []);
  t.same(await ids({ ids: [e1.event.id, e2.event.id], kinds: [1] }), [e1.event.id]);
  t.same(await ids({ authors: [pk], kinds: [] }), [], 'empty list matches nothing');
  const merged = await store.query([{ ids: [e1.event.id] }, { authors: [pk], kinds: [1], limit: 1 }, { ids: [e1.event.id, e2.event.id] }]);
  t.same(merged.map((s) => s.event.id), [tie[0], e2.event.id, e1.event.id], 'merged without duplicates');
  t.ok((await store.count()) > 5000);
});

t.test('NUL characters and non-characters round-trip', async (t) => {
  const weird = ['a\u0000b', '\u0000', '\uFFFE\uFFFF\uFDD0', '\u0001starts', 'lone \uD800 surrogate', 'emoji 🦩'];
  for (const s of weird) {
    const ev = mk({ content: s, tags: [['t', s], ['d', s]] });
    t.same(await store.save(ev), { status: 'stored' }, JSON.stringify(s));
    const got = await store.query([{ tags: { t: [s] } }]);
    t.same(got.map((g) => g.event.id), [ev.event.id], `tag filter finds ${JSON.stringify(s)}`);
    t.equal(got[0]!.event.content, s);
    t.equal(got[0]!.raw, ev.raw);
  }
  // Escaping is injective: the escaped form of one value never matches another value.
  t.same(await store.query([{ tags: { t: ['\u0001"a\\u0000b"'] } }]), []);
  const addr = mk({ kind: 30000, tags: [['d', 'x\u0000y']] });
  t.same(await store.save(addr), { status: 'stored' });
  const a2 = mk({ kind: 30000, created_at: 1_700_000_001, tags: [['d', 'x\u0000y']] });
  t.same(await store.save(a2), { status: 'stored' });
  t.same(await ids({ kinds: [30000], authors: [keyA] }), [a2.event.id]);
});

t.test('a bad apple does not sink its batch', async (t) => {
  const good = Array.from({ length: 40 }, () => mk());
  // A created_at beyond BIGINT is refused by PostgreSQL itself: a data error inside the batch.
  const bad = [mk({ created_at: 2 ** 63 }), mk({ created_at: -(2 ** 64) })];
  const all = [...good.slice(0, 20), bad[0]!, ...good.slice(20), bad[1]!];
  const before = store.stats.transactions;
  const outcomes = await Promise.all(all.map((e) => store.save(e)));
  t.same(outcomes.filter((o) => o.status === 'stored').length, 40, 'every good event stored');
  t.match(outcomes[20], { status: 'rejected', reason: /^error:/ });
  t.match(outcomes[41], { status: 'rejected', reason: /^error:/ });
  t.ok(store.stats.transactions - before < 30, 'bisected, not retried one by one');
  t.match(await store.save(mk({ kind: 2 ** 31 })), { status: 'rejected', reason: /^invalid:/ });
});

t.test('abort and statement timeout raise StorageError', async (t) => {
  const slow = new PgEventStore({ ...config, dbStatementTimeoutMs: 200 }, logger);
  t.teardown(() => slow.close());
  const err = await slow.pool.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
  t.match(err, { code: '57014' });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const aborted = await store.query([{ kinds: [1] }], ac.signal).then(
    () => null,
    (e: unknown) => e,
  );
  // The query may finish before the abort; when it does not, the error is a StorageError.
  if (aborted !== null) t.match(aborted, { name: 'StorageError', code: 'aborted' });
  const pre = new AbortController();
  pre.abort();
  await t.rejects(store.query([{ kinds: [1] }], pre.signal), { name: 'StorageError', code: 'aborted' });
});

t.test('StorageError when PostgreSQL is unreachable', async (t) => {
  const dead = new PgEventStore({ ...config, databaseUrl: 'postgres://postgres@127.0.0.1:1/none', dbConnectTimeoutMs: 500 }, logger);
  t.teardown(() => dead.close());
  await t.rejects(dead.save(mk()), { name: 'StorageError', code: 'connection' });
  await t.rejects(dead.lookup([mk().event.id]), { name: 'StorageError' });
  await t.rejects(dead.query([{ kinds: [1] }]), { name: 'StorageError' });
  await t.rejects(dead.ping(), { name: 'StorageError' });
  await t.rejects(dead.count(), { name: 'StorageError' });
  await store.ping();
});

t.test('pool exhaustion and error code mapping', async (t) => {
  const tiny = new PgEventStore({ ...config, dbPoolSize: 1, dbConnectTimeoutMs: 200 }, logger);
  t.teardown(() => tiny.close());
  // The read pool holds db_pool_size connections plus one for counts and admin reads: hog both.
  const hogs = [tiny.pool.query('SELECT pg_sleep(0.6)'), tiny.pool.query('SELECT pg_sleep(0.6)')];
  await t.rejects(tiny.count(), { name: 'StorageError', code: 'pool-exhausted' });
  await Promise.all(hogs);
  const codes: [unknown, string][] = [
    [{ code: '57P01', message: 'terminating connection due to administrator command' }, 'admin-shutdown'],
    [{ code: '57P03', message: 'the database system is in recovery mode' }, 'unavailable'],
    [{ code: '53300', message: 'sorry, too many clients already' }, 'too-many-connections'],
    [{ code: '57014', message: 'canceling statement due to statement timeout' }, 'statement-timeout'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'connection'],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'connection'],
    [new Error('Connection terminated unexpectedly'), 'connection'],
  ];
  for (const [err, code] of codes) t.equal(toStorageError(err, 'x').code, code, code);
});

t.test('concurrent lookups in one tick share one query', async (t) => {
  // Lookups are part of ingest: they run on the write pool.
  const original = store.writePool.query.bind(store.writePool);
  let calls = 0;
  (store.writePool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    calls++;
    return (original as (...a: unknown[]) => unknown)(...args);
  };
  t.teardown(() => {
    (store.writePool as unknown as { query: unknown }).query = original;
  });
  const evs = Array.from({ length: 20 }, () => mk());
  await Promise.all(evs.slice(0, 10).map((e) => store.save(e)));
  calls = 0;
  const results = await Promise.all(evs.map((e) => store.lookup([e.event.id])));
  t.equal(calls, 1, 'one query for 20 lookups');
  t.same(results.map((m) => m.size), [...Array(10).fill(1), ...Array(10).fill(0)]);
});

t.test('id lookups: one query at a time on the write pool, later callers share the next one', async (t) => {
  // A fresh store, so the write pool starts empty: every connection it opens is one a lookup needed at once.
  const fresh = new PgEventStore(config, logger, { now: () => clock });
  t.teardown(() => fresh.close());
  const saved = mk();
  t.same(await store.save(saved), { status: 'stored' });
  const asked: Promise<Map<string, string>>[] = [];
  // Thirty lookups in thirty ticks: one query per tick would open every write connection (pool max 4).
  await new Promise<void>((done) => {
    const next = (i: number): void => {
      if (i === 30) return done();
      asked.push(fresh.lookup([saved.event.id, randomBytes(32).toString('hex')]));
      setImmediate(() => next(i + 1));
    };
    next(0);
  });
  const answers = await Promise.all(asked);
  for (const m of answers) t.same([...m], [[saved.event.id, 'stored']]);
  t.equal(fresh.writePool.totalCount, 1, 'one write connection served every lookup');
  // More ids than one query carries (2,000) still get one answer each.
  const many = Array.from({ length: 4500 }, () => randomBytes(32).toString('hex'));
  const big = await fresh.lookup([...many, saved.event.id]);
  t.same([...big], [[saved.event.id, 'stored']]);
});

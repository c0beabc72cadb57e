// The cache behind windowed anti-entropy: WindowSummaries (consecutive windows, invalidation by range, TTL,
// expiry, bound) and EventTimeChanges against a real PostgreSQL with the relay's schema: the trigger-written log
// reaches the cache for inserts, deletes and TRUNCATE, a transaction that commits after a poll started is not
// missed, and a summary read before a poll that touched its window is reported as stale.
import t from 'tap';
import pg from 'pg';
import pino from 'pino';
import { runMigrations } from '../../relay/src/storage/migrations.js';
import { EventTimeChanges } from '../../relay/src/negentropy/time-changes.js';
import { WindowSummaries, type WindowSummary } from '../../relay/src/negentropy/window-summaries.js';
import { freshDatabase, type FreshDatabase } from '../helpers/db.js';

const silent = pino({ level: 'silent' });
const fp = new Uint8Array(16);
const summary = (since: number, until: number, extra: Partial<WindowSummary> = {}): WindowSummary => ({ since, until, count: 1, fingerprint: fp, expiresAt: Infinity, storedAt: Date.now(), ...extra });

t.test('WindowSummaries: exact lookups, boundaries kept through invalidation, overlap, TTL, expiry, bound', async (t) => {
  const w = new WindowSummaries(3, 60_000);
  w.put(summary(0, 99));
  w.put(summary(100, 199));
  w.put(summary(200, Infinity));
  t.ok(w.get(100, 199), 'exact window found');
  t.equal(w.get(100, 150), null, 'a different end is a different window');
  t.equal(w.startingAt(200)?.until, Infinity);
  t.equal(w.nextBoundaryAfter(0), 100);
  t.equal(w.nextBoundaryAfter(150), 200);
  t.equal(w.startOfWindowHolding(150), 100);
  w.invalidate({ from: 150, to: 250 });
  t.equal(w.get(100, 199), null, 'a change inside the window invalidates it');
  t.equal(w.startingAt(200), null, 'and the open window it overlaps');
  t.ok(w.get(0, 99), 'the window before stays valid');
  t.equal(w.nextBoundaryAfter(0), 100, 'boundaries survive invalidation (the next plan reuses them)');
  w.put(summary(50, 120));
  t.equal(w.get(0, 99), null, 'an overlapping put replaces what it overlaps');
  t.equal(w.nextBoundaryAfter(50), 200);
  t.equal(w.size, 2);
  w.put(summary(300, 399));
  w.put(summary(400, 499));
  t.equal(w.size, 3, 'at most maxEntries windows');
  const stale = new WindowSummaries(10, 1000);
  stale.put(summary(0, 9, { storedAt: Date.now() - 2000 }));
  t.equal(stale.get(0, 9), null, 'older than the TTL: dropped');
  stale.put(summary(10, 19, { expiresAt: Math.floor(Date.now() / 1000) - 1 }));
  t.equal(stale.get(10, 19), null, 'one of its events expired: dropped');
  w.invalidate(null);
  t.equal(w.size, 0, 'null forgets everything');
});

let db: FreshDatabase;
let pool: pg.Pool;
t.before(async () => {
  db = await freshDatabase('window_cache');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await runMigrations(pool, silent);
});
t.teardown(async () => {
  await pool?.end();
  await db?.drop();
});

let serial = 0;
async function insertAt(client: pg.Pool | pg.PoolClient, createdAt: number): Promise<string> {
  const id = (serial++).toString(16).padStart(64, '0');
  await client.query(
    `INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, raw) VALUES ($1, $2, $3, 1, '[]', '', '', '{}')`,
    [id, 'ab'.repeat(32), createdAt],
  );
  return id;
}

t.test('EventTimeChanges: inserts, deletes, late commits and TRUNCATE reach the cache', async (t) => {
  const changes = new EventTimeChanges(pool, silent);
  const w = new WindowSummaries();
  changes.subscribe(w);
  await changes.poll();
  const fill = () => {
    w.put(summary(0, 9_999));
    w.put(summary(10_000, 19_999));
    w.put(summary(20_000, Infinity));
  };
  fill();

  const id = await insertAt(pool, 12_345);
  t.ok(w.get(10_000, 19_999), 'nothing is invalidated before a poll');
  await changes.poll();
  t.equal(w.get(10_000, 19_999), null, 'an insert invalidates its window');
  t.ok(w.get(0, 9_999) && w.startingAt(20_000), 'and only the windows its 1024-second bucket overlaps');

  fill();
  await pool.query('DELETE FROM events WHERE id = $1', [id]);
  await changes.poll();
  t.equal(w.get(10_000, 19_999), null, 'a delete made behind the relay\'s back invalidates its window');

  fill();
  // A transaction that wrote before a poll and commits after it: invisible to that poll, so the next must see it.
  const late = await pool.connect();
  try {
    await late.query('BEGIN');
    await insertAt(late, 5_000);
    await changes.poll();
    t.ok(w.get(0, 9_999), 'an uncommitted write is not seen');
    await insertAt(pool, 25_000);
    await changes.poll();
    t.equal(w.startingAt(20_000), null, 'a later committed write is');
    await late.query('COMMIT');
  } finally {
    late.release();
  }
  await changes.poll();
  t.equal(w.get(0, 9_999), null, 'the late commit is not missed by the poll after it');

  fill();
  const before = changes.generation;
  await insertAt(pool, 15_000);
  await changes.poll();
  t.ok(changes.changedSince(before, 10_000, 19_999), 'a summary read before that poll is stale for its window');
  t.notOk(changes.changedSince(before, 0, 9_999), 'but not for a window the poll did not touch');
  t.notOk(changes.changedSince(changes.generation, 10_000, 19_999), 'nor after it');

  // An open transaction elsewhere holds the horizon back: the same rows are read at every poll, applied once.
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT pg_current_xact_id()');
    await insertAt(pool, 3_000);
    await changes.poll();
    fill();
    const fresh = changes.generation;
    await changes.poll();
    await changes.poll();
    t.ok(w.get(0, 9_999), 'a change already applied is not applied again when its row is read again');
    t.notOk(changes.changedSince(fresh, 0, 9_999), 'nor does it make a fresh summary look stale');
    await holder.query('COMMIT');
  } finally {
    holder.release();
  }

  fill();
  await pool.query('TRUNCATE events CASCADE');
  await changes.poll();
  t.equal(w.size, 0, 'TRUNCATE forgets everything');

  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM event_time_changes');
  t.equal(Number(rows[0]!.n), 0, 'the log is trimmed once read');
});

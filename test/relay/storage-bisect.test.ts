import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';
import { PgEventStore, REASON_DB_TIMEOUT } from '../../relay/src/storage/pg-event-store.js';
import { StorageError, type StoredEvent } from '../../relay/src/storage/types.js';
import { freshDatabase } from '../helpers/db.js';

// Group commit against a statement timeout, on the store itself: one slow event in a batch is bisected out and
// refused; a database slow for everyone refuses nothing (the timeout stays an infrastructure error).
const logger = pino({ level: 'silent' });
const db = await freshDatabase('storage_bisect');
const store = new PgEventStore({ ...DEFAULT_CONFIG, databaseUrl: db.url, dbStatementTimeoutMs: 500, dbConnectTimeoutMs: 5000 }, logger);
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
t.teardown(async () => {
  await store.close();
  await admin.end();
  await db.drop();
});
await store.migrate();
await admin.query(`CREATE FUNCTION slow_poison() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN IF NEW.content = 'slow poison' THEN PERFORM pg_sleep(10); END IF; RETURN NEW; END $$`);
await admin.query('CREATE TRIGGER slow_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_poison()');

const pubkey = randomBytes(32).toString('hex');
function mk(content = randomBytes(8).toString('hex')): StoredEvent {
  const base = { pubkey, created_at: Math.floor(Date.now() / 1000), kind: 1, tags: [], content };
  const event: NostrEvent = { id: computeEventId(base), ...base, sig: randomBytes(64).toString('hex') };
  return { event, raw: JSON.stringify(event) };
}
const stored = async (ids: string[]) => (await admin.query('SELECT id FROM events WHERE id = ANY($1::text[])', [ids])).rowCount;

t.test('one event that times out is bisected out of its batch; the others commit', async (t) => {
  const good = Array.from({ length: 30 }, () => mk());
  const poison = mk('slow poison');
  const all = [...good.slice(0, 11), poison, ...good.slice(11)];
  // Saved in one tick: one batch.
  const outcomes = await Promise.all(all.map((e) => store.save(e)));
  t.same(outcomes[11], { status: 'rejected', reason: REASON_DB_TIMEOUT }, 'the slow event is refused');
  t.ok(outcomes.every((o, i) => i === 11 || o.status === 'stored'), 'every other event is stored');
  t.equal(await stored(good.map((e) => e.event.id)), good.length);
  t.equal(await stored([poison.event.id]), 0);
});

t.test('a database slow for everyone refuses no event: the timeout propagates', async (t) => {
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  t.teardown(() => locker.end());
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
  const batch = Array.from({ length: 8 }, () => mk());
  const results = await Promise.all(batch.map((e) => store.save(e).then((o) => ({ o }), (err: unknown) => ({ err }))));
  await locker.query('ROLLBACK');
  for (const r of results) t.ok('err' in r && r.err instanceof StorageError && r.err.code === 'statement-timeout', 'rejected with statement-timeout, not refused');
  t.same(await Promise.all(batch.map((e) => store.save(e))), batch.map(() => ({ status: 'stored' })), 'stored once the database keeps up');
});

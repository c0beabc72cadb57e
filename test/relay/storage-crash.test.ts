import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { PgEventStore } from '../../relay/src/storage/pg-event-store.js';
import type { StoredEvent } from '../../relay/src/storage/types.js';
import { startPrivatePostgres } from '../helpers/private-instances.js';

const logger = pino({ level: 'silent' });

function mk(): StoredEvent {
  const base = { pubkey: randomBytes(32).toString('hex'), created_at: 1_700_000_000, kind: 1, tags: [], content: 'x' };
  const event: NostrEvent = { id: computeEventId(base), ...base, sig: randomBytes(64).toString('hex') };
  return { event, raw: JSON.stringify(event) };
}

// Durability is the point here, so fsync stays on.
const pgi = await startPrivatePostgres();
t.teardown(() => pgi.stop());

t.test('private PostgreSQL: SIGKILL makes clients fail, start() brings it back with committed data', async (t) => {
  const store = new PgEventStore(
    { ...DEFAULT_CONFIG, databaseUrl: pgi.url, dbConnectTimeoutMs: 1000, dbStatementTimeoutMs: 2000 },
    logger,
    { pingTimeoutMs: 1000 },
  );
  t.teardown(() => store.close());
  await store.migrate();
  const before = mk();
  t.same(await store.save(before), { status: 'stored' });

  const raw = new pg.Client({ connectionString: pgi.url });
  raw.on('error', () => {
    // The kill below breaks this connection on purpose; the failed query is what the test checks.
  });
  await raw.connect();
  await pgi.kill();
  await t.rejects(raw.query('SELECT 1'), 'plain client errors after SIGKILL');
  await t.rejects(store.save(mk()), { name: 'StorageError' });
  await t.rejects(store.query([{ kinds: [1] }]), { name: 'StorageError' });
  await t.rejects(store.ping(), { name: 'StorageError' });

  await pgi.start();
  await store.ping();
  const after = mk();
  t.same(await store.save(after), { status: 'stored' }, 'writes work again');
  t.same((await store.lookup([before.event.id, after.event.id])).size, 2, 'committed event survived the crash');
});

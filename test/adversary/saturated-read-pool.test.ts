import t from 'tap';
import pg from 'pg';
import { startRelay } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { sleep, until } from '../outage/helpers/workload.js';

// A REQ flood saturates the read pool (here: every read blocked behind a lock another session holds, the way a long
// migration or VACUUM FULL would). That is load, not an outage: the health probe has its own connection, so the relay
// must stay in normal mode; and REQs whose clients went away must leave the queue and have their queries cancelled.
const relay = await startRelay({
  // The protocol-level query slots (4 per connection, 32 in all by default) are opened wide: this test is about the
  // pool's own queue behind them (test/adversary/req-flood.test.ts covers the slots).
  args: ['--db-pool-size', '2', '--db-statement-timeout-ms', '60000', '--db-connect-timeout-ms', '60000', '--query-timeout-ms', '60000', '--max-queries-per-connection', '8', '--max-queries', '64'],
});
const admin = new pg.Client({ connectionString: relay.databaseUrl });
await admin.connect();
const locker = new pg.Client({ connectionString: relay.databaseUrl });
await locker.connect();
t.teardown(async () => {
  await locker.query('ROLLBACK').catch(() => undefined);
  await locker.end();
  await admin.end();
  await relay.stop();
  await relay.cleanup();
});

const status = async () => (await relay.admin<{ mode: string; database: { state: string } }>('/admin/status')).body;
async function gauge(name: string, pool: string): Promise<number> {
  const text = (await relay.admin<string>('/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{pool="${pool}"}`));
  return line ? Number(line.split(' ').at(-1)) : NaN;
}
/** Backends of the relay's read pool waiting on a lock. */
async function blockedReaders(): Promise<number> {
  const r = await admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'nostr-relay-reader' AND wait_event_type = 'Lock' AND datname = current_database()",
  );
  return r.rows[0]!.n;
}

t.test('a saturated read pool is not an outage; aborted REQs leave the queue and are cancelled', async (t) => {
  const seed = await RawClient.connect(relay.url);
  t.same(await seed.publish(signed({ content: 'before the flood' })), { ok: true, message: '' });
  await seed.close();

  await locker.query('BEGIN');
  await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
  const clients = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(relay.url)));
  const flood = (c: RawClient, from: number) => {
    for (let i = 0; i < 8; i++) c.send(['REQ', `flood-${from + i}`, { kinds: [1], limit: 10 }]);
  };
  // The first client's REQs take both read connections; everyone else's queue behind them.
  flood(clients[0]!, 0);
  await until('both read connections blocked', async () => (await blockedReaders()) === 2, 15_000);
  clients.slice(1).forEach((c, i) => flood(c, 8 * (i + 1)));
  await until('the rest queued', async () => (await gauge('relay_db_pool_waiting', 'read')) === 38, 15_000);
  // Twelve probe intervals and more: the probe would have timed out many times over if it queued behind the reads.
  await sleep(3000);
  const during = await status();
  t.equal(during.mode, 'normal', 'still normal mode with every read connection busy');
  t.equal(during.database.state, 'up', 'PostgreSQL still counts as up');
  t.notOk(relay.logs.some((l) => l.msg === 'database unavailable'), 'no "database unavailable" logged');

  // Four clients go away while both connections are still blocked: their queued queries must leave the queue now,
  // not when a connection frees up (none will while the lock is held).
  await Promise.all(clients.slice(1).map((c) => c.close()));
  await until('the closed clients leave the queue', async () => (await gauge('relay_db_pool_waiting', 'read')) === 6, 10_000);
  t.equal(await blockedReaders(), 2, 'while both read connections are still blocked');
  // The first client goes too: its running queries are cancelled on the server, with the lock still held.
  await clients[0]!.close();
  await until('the read queue empties', async () => (await gauge('relay_db_pool_waiting', 'read')) === 0, 10_000);
  await until('the blocked queries are cancelled', async () => (await blockedReaders()) === 0, 10_000);
  t.pass('queue emptied and server-side queries cancelled while the lock was still held');

  await locker.query('ROLLBACK');
  const reader = await RawClient.connect(relay.url);
  const started = Date.now();
  const res = await reader.query('after', { kinds: [1], limit: 10 });
  t.ok(res.eose && res.events.length === 1, 'a new REQ is answered');
  t.ok(Date.now() - started < 10_000, `in ${Date.now() - started} ms`);
  await reader.close();
  t.equal((await status()).mode, 'normal');
});

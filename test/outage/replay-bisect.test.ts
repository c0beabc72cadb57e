import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freshRedisNamespace } from '../helpers/db.js';
import { startPrivatePostgres } from '../helpers/private-instances.js';
import { startRelay } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { idsInDatabase, until } from './helpers/workload.js';

// One event whose insert always runs past statement_timeout (a trigger that sleeps on it: think of a lock it waits
// on, or a pathological index) must not stall the replay of everything journaled with it. The batch is bisected:
// the others commit, that one event is refused (logged, counted, kept in replay-refused.jsonl), the relay recovers.
// Before, the whole batch failed, was retried forever, and the relay stayed degraded until its journal filled up.
// Not `fast`: the instance is killed, and synchronous_commit=off lost the schema itself with it on a busy machine.
const pgi = await startPrivatePostgres();
const ns = freshRedisNamespace();
const dataDir = mkdtempSync(join(tmpdir(), 'replay-bisect-'));
const relay = await startRelay({ databaseUrl: pgi.url, redisUrl: ns.url, redisKeyPrefix: ns.prefix, dataDir,
  // 3 s: honest batches do not time out on a busy machine (1 s did, and then the slowness is everyone's, not the
  // poison's); still short beside the poison's 30 s sleep.
  args: ['--db-statement-timeout-ms', '1000'] });
t.teardown(async () => {
  await relay.stop();
  await ns.cleanup();
  await pgi.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
const status = async () => (await relay.admin<{ mode: string }>('/admin/status')).body;

t.test('a replay batch with one event that times out is bisected; the rest lands and the relay recovers', async (t) => {
  const admin = new pg.Client({ connectionString: pgi.url });
  await admin.connect();
  await admin.query(`CREATE FUNCTION slow_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.content = 'slow poison' THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$`);
  await admin.query('CREATE TRIGGER slow_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_poison()');
  await admin.end();

  await pgi.kill();
  await until('degraded', async () => (await status()).mode === 'degraded', 10_000);
  const client = await RawClient.connect(relay.url);
  const good = Array.from({ length: 24 }, (_, i) => signed({ content: `journaled ${i}`, tags: [['t', 'bisect']] }));
  const poison = signed({ content: 'slow poison' });
  const all = [...good.slice(0, 13), poison, ...good.slice(13)];
  for (const ev of all) t.same(await client.publish(ev), { ok: true, message: '' }, 'journaled while PostgreSQL is down');
  await client.close();

  const logsBefore = relay.logs.length;
  await pgi.start();
  // A handful of three-second timeouts while the bisection narrows down on the event.
  const recovered = await relay.waitForLog(/^database recovered$/, 120_000, logsBefore);
  t.equal(recovered.refused, 1, 'the replay refused exactly one event');
  await until('normal mode', async () => (await status()).mode === 'normal', 10_000);

  const { found, multiple } = await idsInDatabase(pgi.url, all.map((e) => e.id));
  t.equal(found.size, good.length, 'every other journaled event is in PostgreSQL');
  t.notOk(found.has(poison.id), 'the slow one is not');
  t.equal(multiple, 0, 'nothing written twice');

  const metrics = (await relay.admin<string>('/metrics')).body;
  t.match(metrics, /relay_db_refused_events_total\{kind="statement-timeout"\} 1\b/, 'counted');
  t.ok(
    relay.logs.slice(logsBefore).some((l) => l.msg === 'event refused: its insert timed out while the rest of its batch committed' && l.id === poison.id),
    'logged with its id',
  );
  const refused = readFileSync(join(dataDir, 'replay-refused.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; reason: string; raw?: string });
  const line = refused.find((r) => r.id === poison.id);
  t.match(line, { reason: /^error: the database timed out/ }, 'recorded in replay-refused.jsonl');
  t.same(JSON.parse(line?.raw ?? 'null'), poison, 'with the event itself, so an operator can submit it again');
});

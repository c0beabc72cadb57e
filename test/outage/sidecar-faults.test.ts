import t, { type Test } from 'tap';
import { freshDatabase, freshRedisNamespace } from '../helpers/db.js';
import { startRelay } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startSidecar } from './helpers/sidecar-process.js';
import { Workload, idsInDatabase, sleep, storedNotAcked, until } from './helpers/workload.js';

// The profiles' detection target (chaos-profiles/*-outage.yaml: within 5s); idle it takes well under 0.5 s.
const DETECT_BUDGET_MS = 5000;

interface Status {
  mode: string;
  cache: string;
  storage: { queueDepth: number };
}

// Faults injected on the wire by the chaos sidecar between the relay and PostgreSQL / Redis: partitions (frozen
// connections, black-holed new ones), TCP resets, PostgreSQL ErrorResponses (57P03: in recovery) and Redis error
// replies (-LOADING, -OOM), while a workload publishes continuously. Afterwards every acknowledged event is in
// PostgreSQL exactly once.
const db = await freshDatabase('outage_sidecar');
const ns = freshRedisNamespace();
const sidecar = await startSidecar([
  { name: 'postgres', upstream: '127.0.0.1:5432' },
  { name: 'redis', upstream: '127.0.0.1:6379' },
]);
const pgUrl = new URL(db.url);
pgUrl.port = String(sidecar.ports.postgres);
const relay = await startRelay({
  databaseUrl: pgUrl.toString(),
  redisUrl: `redis://127.0.0.1:${sidecar.ports.redis}/0`,
  redisKeyPrefix: ns.prefix,
  // Short client-side timeouts, so connections frozen by a partition are given up within the test's time.
  args: ['--db-statement-timeout-ms', '1500', '--db-connect-timeout-ms', '1000'],
});
t.teardown(async () => {
  await relay.stop();
  await sidecar.stop();
  await db.drop();
  await ns.cleanup();
});
const status = async () => (await relay.admin<Status>('/admin/status')).body;
const workload = new Workload(() => relay.url);
workload.start();
t.teardown(() => workload.stop());

async function outage(t: Test, what: string, link: 'postgres' | 'redis', toxics: Array<{ type: string; attributes?: Record<string, unknown> }>, holdMs = 1500) {
  const field = link === 'postgres' ? 'mode' : 'cache';
  const bad = link === 'postgres' ? 'degraded' : 'fallback-mode';
  const good = link === 'postgres' ? 'normal' : 'ok';
  const added: string[] = [];
  const logsBefore = relay.logs.length;
  for (const toxic of toxics) added.push(await sidecar.addToxic(link, toxic));
  // The fault is in force once the sidecar's API has answered.
  const at = Date.now();
  await until(`${what}: ${bad}`, async () => (await status())[field] === bad, 20_000, 20);
  const seenMs = Date.now() - at;
  // The relay's own log line dates the detection; polling /admin/status adds its own delay on a busy machine.
  const line = relay.logs.slice(logsBefore).find((l) => l.msg === `${link === 'postgres' ? 'database' : 'cache'} unavailable`);
  const detectionMs = line ? Date.parse(String(line.time)) - at : seenMs;
  t.ok(detectionMs < DETECT_BUDGET_MS, `${what}: ${line ? `"${String(line.msg)}" logged` : "status changed"} ${detectionMs} ms after the fault (status showed ${bad} after ${seenMs} ms)`);
  await sleep(holdMs);
  for (const name of added) await sidecar.removeToxic(link, name);
  await until(`${what}: back to ${good}`, async () => (await status())[field] === good, 20_000, 50);
  t.pass(`${what}: recovered on its own`);
}

t.test('PostgreSQL link: partition (black-holed new connections, frozen open ones)', (t) =>
  outage(t, 'pg partition', 'postgres', [{ type: 'partition', attributes: { new: 'blackhole', existing: 'freeze' } }]),
);

t.test('PostgreSQL link: TCP resets and an ErrorResponse 57P03 (the database system is in recovery mode)', async (t) => {
  await outage(t, 'pg reset + 57P03', 'postgres', [
    { type: 'pg_error', attributes: { sqlstate: '57P03', message: 'the database system is in recovery mode' } },
    { type: 'reset_peer', attributes: { timeout: 0 } },
  ]);
  const metrics = (await relay.admin<string>('/metrics')).body;
  t.match(metrics, /relay_db_errors_total\{code="(unavailable|connection)"\} [1-9]/, 'database errors counted by code');
});

t.test('Redis link: partition, then -LOADING and -OOM error replies', async (t) => {
  await outage(t, 'redis partition', 'redis', [{ type: 'partition', attributes: { new: 'refuse', existing: 'reset' } }]);
  await outage(t, 'redis LOADING', 'redis', [{ type: 'redis_error', attributes: { error: 'LOADING Redis is loading the dataset in memory' } }]);
  await outage(t, 'redis OOM', 'redis', [{ type: 'redis_error', attributes: { error: "OOM command not allowed when used memory > 'maxmemory'." } }]);
});

t.test('both links partitioned at once: the journal alone keeps accepting; REQs end in time', async (t) => {
  const pgToxic = await sidecar.addToxic('postgres', { type: 'partition', attributes: { new: 'refuse', existing: 'reset' } });
  const redisToxic = await sidecar.addToxic('redis', { type: 'partition', attributes: { new: 'refuse', existing: 'reset' } });
  await until('both down', async () => {
    const s = await status();
    return s.mode === 'degraded' && s.cache === 'fallback-mode';
  }, 20_000, 20);
  const client = await RawClient.connect(relay.url);
  const ev = signed({ content: 'both links cut' });
  t.same(await client.publish(ev), { ok: true, message: '' }, 'acknowledged from the journal');
  const res = await client.query('both', { ids: [ev.id] });
  t.ok(res.eose, 'REQ ends with EOSE');
  t.equal(res.events.length, 1, 'served from the journal');
  const notice = await client.next((f) => f[0] === 'NOTICE', 2000, 'partial NOTICE');
  t.match(notice[1], /journal only/);
  await client.close();
  const healedFrom = relay.logs.length;
  await sidecar.removeToxic('postgres', pgToxic);
  await sidecar.removeToxic('redis', redisToxic);
  await relay.waitForLog(/^database recovered$/, 20_000, healedFrom);
  await until('all normal', async () => {
    const s = await status();
    return s.mode === 'normal' && s.cache === 'ok';
  }, 20_000);
  workload.report.acked.add(ev.id);
});

t.test('after every fault: each acknowledged event is in PostgreSQL exactly once; verify-integrity ok', async (t) => {
  const report = await workload.stop();
  // What the journal acknowledged reaches PostgreSQL by replay: wait for it to drain before looking.
  await until('replay drained', async () => {
    const s = await status();
    return s.mode === 'normal' && s.storage.queueDepth === 0;
  }, 30_000);
  t.same(report.refused, [], 'no publish was refused');
  t.ok(report.acked.size > 100, `${report.acked.size} events acknowledged`);
  const { found, multiple } = await idsInDatabase(db.url, report.acked);
  t.equal(found.size, report.acked.size, 'every acknowledged event is in PostgreSQL');
  t.equal(multiple, 0, 'exactly once (no event_tags row written twice)');
  const stray = await storedNotAcked(db.url, report);
  t.ok(stray <= report.unanswered, `${stray} stored events never acknowledged, at most the ${report.unanswered} unanswered`);
  const integrity = await relay.admin<{ ok: boolean }>('/admin/events/verify-integrity');
  t.ok(integrity.body.ok, `verify-integrity: ${JSON.stringify(integrity.body)}`);
});

import t from 'tap';
import { freshRedisNamespace } from '../helpers/db.js';
import { startPrivatePostgres } from '../helpers/private-instances.js';
import { startRelay } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { Workload, idsInDatabase, sleep, storedNotAcked, until } from './helpers/workload.js';

// The profiles' detection target (chaos-profiles/*-outage.yaml: within 5s); idle it takes well under 0.5 s.
const DETECT_BUDGET_MS = 5000;

interface Status {
  mode: string;
  cache: string;
  storage: { queueDepth: number; journalBytes: number; replayedEvents: number; lastReplay: { events: number; ms: number } };
}

// PostgreSQL killed with SIGKILL under a continuous publish load: degraded mode, journal, replay, nothing lost.
// Durable settings: with synchronous_commit=off a SIGKILL loses commits PostgreSQL already acknowledged.
const pgi = await startPrivatePostgres();
const ns = freshRedisNamespace();
const relay = await startRelay({ databaseUrl: pgi.url, redisUrl: ns.url, redisKeyPrefix: ns.prefix });
t.teardown(async () => {
  await relay.stop();
  await relay.cleanup();
  await ns.cleanup();
  await pgi.stop();
});
const status = async () => (await relay.admin<Status>('/admin/status')).body;

t.test('PostgreSQL SIGKILL: degraded within 1 s, publishes keep succeeding, replay on return, nothing lost', async (t) => {
  const workload = new Workload(() => relay.url);
  workload.start();
  await sleep(800);
  t.equal((await status()).mode, 'normal');

  // The helper kills the postmaster, then its backends, and waits for all of them: the outage is complete when it returns.
  const logsBefore = relay.logs.length;
  await pgi.kill();
  const killedAt = Date.now();
  await until('degraded mode', async () => (await status()).mode === 'degraded', 20_000, 20);
  const seenMs = Date.now() - killedAt;
  // The relay's own log line dates the detection; polling /admin/status adds its own delay on a busy machine.
  const line = relay.logs.slice(logsBefore).find((l) => l.msg === 'database unavailable');
  const detectionMs = line ? Date.parse(String(line.time)) - killedAt : seenMs;
  t.ok(detectionMs < DETECT_BUDGET_MS, `"database unavailable" ${detectionMs} ms after the kill completed (status showed degraded after ${seenMs} ms)`);

  await sleep(2000);
  const during = await status();
  t.ok(during.storage.queueDepth > 0, `events queued while degraded: ${during.storage.queueDepth}`);
  t.ok(during.storage.journalBytes > 0, 'the journal holds them');

  // REQs are answered from Redis and the journal, with a NOTICE that they may be partial, and end with EOSE.
  const reader = await RawClient.connect(relay.url);
  const own = signed({ content: 'published while PostgreSQL is down' });
  t.same(await reader.publish(own), { ok: true, message: '' }, 'a publish while degraded is acknowledged');
  const res = await reader.query('degraded', { ids: [own.id] });
  t.ok(res.eose, 'REQ ends with EOSE');
  t.same(res.events.map((e) => e.id), [own.id], 'the degraded event is served');
  const notice = await reader.next((f) => f[0] === 'NOTICE', 2000, 'partial NOTICE');
  t.match(notice[1], /^partial results for degraded: degraded mode/);
  await reader.close();

  await pgi.start();
  // Only a recovery after the kill counts (a busy machine can make the probe flap earlier).
  const recovered = await relay.waitForLog(/^database recovered$/, 20_000, logsBefore);
  t.ok(Number(recovered.replayed) > 0, `replayed ${recovered.replayed} events in ${recovered.replayMs} ms`);
  await until('normal mode', async () => (await status()).mode === 'normal', 20_000);
  await sleep(500);
  const report = await workload.stop();
  report.acked.add(own.id);

  t.same(report.refused, [], 'no publish was refused');
  t.ok(report.acked.size > 100, `${report.acked.size} events acknowledged`);
  const { found, multiple } = await idsInDatabase(pgi.url, report.acked);
  t.equal(found.size, report.acked.size, 'every acknowledged event is in PostgreSQL');
  t.equal(multiple, 0, 'exactly once (no event_tags row written twice)');
  const stray = await storedNotAcked(pgi.url, report);
  t.ok(stray <= report.unanswered, `${stray} stored events never acknowledged, at most the ${report.unanswered} unanswered`);
  const after = await status();
  t.equal(after.storage.queueDepth, 0, 'queue drained');
  t.equal(after.storage.journalBytes, 0, 'journal truncated after replay');
  const integrity = await relay.admin<{ ok: boolean; pending: number; invalid: number; checked: number }>('/admin/events/verify-integrity');
  t.equal(integrity.status, 200);
  t.ok(integrity.body.ok, `verify-integrity: ${JSON.stringify(integrity.body)}`);
  t.equal(after.mode, 'normal');
});

import t from 'tap';
import { appendFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startPrivatePostgres, startPrivateRedis } from '../helpers/private-instances.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { idsInDatabase, until } from './helpers/workload.js';

interface Status {
  mode: string;
  cache: string;
  storage: { queueDepth: number; journalBytes: number; journalMaxBytes: number };
}

// Both PostgreSQL and Redis down: the journal alone accepts up to its cap, then OK false; the relay is SIGKILLed
// while degraded, a torn record is left at the journal's tail, it restarts with PostgreSQL still down, and replays.
const pgi = await startPrivatePostgres();
const redis = await startPrivateRedis();
const dataDir = mkdtempSync(join(tmpdir(), 'relay-journal-'));
const JOURNAL_MAX = 40_000;
const args = ['--journal-max-bytes', String(JOURNAL_MAX)];
let relay: RelayProcess = await startRelay({ databaseUrl: pgi.url, redisUrl: redis.url, redisKeyPrefix: 'crash:', dataDir, args });
t.teardown(async () => {
  // The private Redis child is unref'd; something must keep the event loop alive until its exit is observed.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await relay.stop();
    await pgi.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  } finally {
    clearInterval(keepAlive);
  }
});

t.test('both down → journal-only up to its cap → SIGKILL → torn tail → restart degraded → replay', async (t) => {
  const status = async () => (await relay.admin<Status>('/admin/status')).body;
  await pgi.kill();
  await redis.kill();
  await until('degraded + fallback', async () => {
    const s = await status();
    return s.mode === 'degraded' && s.cache === 'fallback-mode';
  }, 20_000, 20);

  const client = await RawClient.connect(relay.url);
  const acked: string[] = [];
  let refusal: string | undefined;
  for (let i = 0; i < 1000 && refusal === undefined; i++) {
    const ev = signed({ content: `journal only ${i} ${'x'.repeat(200)}`, tags: [['t', 'journal-crash']] });
    const res = await client.publish(ev);
    if (res.ok) acked.push(ev.id);
    else refusal = res.message;
  }
  t.ok(acked.length > 20, `${acked.length} events acknowledged on the journal alone`);
  t.match(refusal, /^error: could not store the event \(journal-full\)/, 'past the cap: OK false "error: ..."');
  const s = await status();
  t.ok(s.storage.journalBytes <= JOURNAL_MAX, `journal ${s.storage.journalBytes} bytes within its cap`);
  t.equal(s.storage.queueDepth, acked.length, 'every acknowledged event is queued');
  await client.close().catch(() => undefined);

  await relay.kill();
  // A torn write: a header announcing more bytes than follow.
  const journalFile = join(dataDir, 'journal', 'journal.log');
  const before = statSync(journalFile).size;
  appendFileSync(journalFile, Buffer.from([0x10, 0x02, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x7b, 0x22]));

  // Restart while PostgreSQL is still down: start-up must work, degraded.
  relay = await startRelay({ databaseUrl: pgi.url, redisUrl: redis.url, redisKeyPrefix: 'crash:', dataDir, args });
  const torn = await relay.waitForLog(/^journal: discarded a torn or corrupt record/);
  t.equal(torn.offset, before, 'the torn record is found where it starts');
  t.equal(statSync(journalFile).size, before, 'and cut off');
  const restarted = await status();
  t.equal(restarted.mode, 'degraded', 'starts degraded while PostgreSQL is down');
  t.equal(restarted.storage.queueDepth, acked.length, 'the journal from before the kill is pending');
  const metrics = (await relay.admin<string>('/metrics')).body;
  t.match(metrics, /relay_journal_errors_total\{code="corrupt-record"\} 1/, 'corrupt record counted');

  await pgi.start();
  await redis.start();
  const recovered = await relay.waitForLog(/^database recovered$/, 20_000);
  t.equal(recovered.replayed, acked.length, 'replayed everything acknowledged before the kill');
  const { found, multiple } = await idsInDatabase(pgi.url, acked);
  t.equal(found.size, acked.length, 'nothing acknowledged is missing');
  t.equal(multiple, 0, 'exactly once (no event_tags row written twice)');
  await until('normal mode, cache ok', async () => {
    const s = await status();
    return s.mode === 'normal' && s.cache === 'ok';
  }, 5000);
  const integrity = await relay.admin<{ ok: boolean; checked: number }>('/admin/events/verify-integrity');
  t.ok(integrity.body.ok, `verify-integrity: ${JSON.stringify(integrity.body)}`);
  t.equal(statSync(journalFile).size, 0, 'journal emptied after replay');
});

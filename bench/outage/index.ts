// Outage benchmark: one run measures, on loopback, against a private PostgreSQL and a private Redis:
//   - detection time of a PostgreSQL SIGKILL and of a Redis SIGKILL (until /admin/status shows the mode),
//   - publish throughput and publish→OK p50/p99 in normal mode, with PostgreSQL down (journal) and with Redis down,
//   - replay time of the events queued while PostgreSQL was down (default 10,000), with new events published
//     during the replay,
//   - that every acknowledged event ends up in PostgreSQL (verify-integrity).
//
//   npx tsx bench/outage/index.ts [--events 5000] [--queued 10000] [--connections 4] [--window 64]
//
// It starts everything it needs (private instances, the relay from relay/dist) and removes it all afterwards.
import { cpus, loadavg } from 'node:os';
import { intOption, parseArgs } from '../lib/args.js';
import { summarize } from '../lib/stats.js';
import { fmt, printTable } from '../lib/table.js';
import { startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from '../../test/helpers/private-instances.js';
import { startRelay, type RelayProcess } from '../../test/helpers/relay-process.js';
import { publishAll, type PublishResult } from './publish.js';
import { signEvents } from './sign.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string' },
    queued: { type: 'string' },
    connections: { type: 'string' },
    window: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log('usage: npx tsx bench/outage/index.ts [--events 5000 (per mode)] [--queued 10000 (published while PostgreSQL is down)] [--connections 4] [--window 64]');
  process.exit(0);
}
const perMode = intOption(values, 'events', 5000);
const queued = intOption(values, 'queued', 10_000);
const connections = intOption(values, 'connections', 4);
const window = intOption(values, 'window', 64);

interface Status {
  mode: string;
  cache: string;
  storage: { queueDepth: number; journalBytes: number };
}

const log = (msg: string): void => console.error(`[outage-bench] ${msg}`);
let pgi: PrivatePostgres | undefined;
let redis: PrivateRedis | undefined;
let relay: RelayProcess | undefined;
// The private instances' children are unref'd; this keeps the loop alive until their exits are observed.
const keepAlive = setInterval(() => undefined, 1000);

async function status(): Promise<Status> {
  return (await relay!.admin<Status>('/admin/status')).body;
}

async function detect(what: string, check: (s: Status) => boolean): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (check(await status())) return performance.now() - started;
    if (performance.now() - started > 10_000) throw new Error(`${what} not detected within 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A log line with this message logged after the first `from` lines (earlier flaps must not count). */
async function waitForNewLog(r: RelayProcess, from: number, msg: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const started = performance.now();
  for (;;) {
    const line = r.logs.slice(from).find((l) => l.msg === msg);
    if (line) return line;
    if (performance.now() - started > timeoutMs) throw new Error(`relay did not log "${msg}" within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function row(mode: string, r: PublishResult): Record<string, string> {
  const s = summarize(r.latenciesMs);
  return {
    mode,
    events: fmt(r.okTrue + r.okFalse + r.unanswered),
    'OK true': fmt(r.okTrue),
    'OK false': fmt(r.okFalse),
    'events/s': fmt((r.okTrue * 1000) / r.ms),
    'p50 ms': fmt(s.p50, 1),
    'p99 ms': fmt(s.p99, 1),
  };
}

async function main(): Promise<void> {
  log(`signing ${perMode * 2 + queued + Math.ceil(perMode / 5)} events`);
  const normalEvents = signEvents(perMode, 'normal');
  const degradedEvents = signEvents(queued, 'degraded');
  const fallbackEvents = signEvents(perMode, 'fallback');
  const replayEvents = signEvents(Math.ceil(perMode / 5), 'during-replay');

  log('starting private PostgreSQL (durable settings) and Redis, and a relay on them');
  pgi = await startPrivatePostgres();
  redis = await startPrivateRedis();
  // Rate limits off: this measures the outage paths, not the limiter (one loopback address sends everything, so the
  // default ip:*:10000/10s refused half the journal phase and the whole replay phase).
  relay = await startRelay({ databaseUrl: pgi.url, redisUrl: redis.url, redisKeyPrefix: 'bench:', args: ['--rate-limits', ''] });

  log(`normal mode: ${perMode} events`);
  const normal = await publishAll(relay.url, normalEvents, connections, window);

  log('SIGKILL PostgreSQL');
  await pgi.kill();
  const pgDetectMs = await detect('PostgreSQL outage', (s) => s.mode === 'degraded');

  log(`PostgreSQL down: ${queued} events into the journal`);
  const degraded = await publishAll(relay.url, degradedEvents, connections, window);
  const depth = (await status()).storage.queueDepth;

  log('restarting PostgreSQL; replaying');
  const logsBefore = relay.logs.length;
  await pgi.start();
  const pgBackAt = performance.now();
  // New events keep arriving while the queue is replayed; they go behind it.
  const during = publishAll(relay.url, replayEvents, connections, window);
  const recovered = await waitForNewLog(relay, logsBefore, 'database recovered', 120_000);
  const duringReplay = await during;
  await detect('normal mode', (s) => s.mode === 'normal');
  const backToNormalMs = performance.now() - pgBackAt;

  log('SIGKILL Redis');
  await redis.kill();
  const redisDetectMs = await detect('Redis outage', (s) => s.cache === 'fallback-mode');
  log(`Redis down: ${perMode} events`);
  const fallback = await publishAll(relay.url, fallbackEvents, connections, window);
  await redis.start();
  const redisBackAt = performance.now();
  await detect('cache recovery', (s) => s.cache === 'ok');
  const redisRecoveryMs = performance.now() - redisBackAt;

  const integrity = (await relay.admin<{ ok: boolean; checked: number; pending: number; problems: string[] }>('/admin/events/verify-integrity')).body;
  const acknowledged = normal.okTrue + degraded.okTrue + duringReplay.okTrue + fallback.okTrue;

  console.log(`\nOutage benchmark — ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}, ${connections} connections × window ${window}, loopback\n`);
  printTable('Publish throughput and publish→OK latency by mode', [
    row('normal', normal),
    row('PostgreSQL down (journal)', degraded),
    row('during replay', duringReplay),
    row('Redis down (fallback)', fallback),
  ]);
  console.log('');
  printTable('Outage handling', [
    { figure: 'PostgreSQL SIGKILL → "degraded" in /admin/status', value: `${fmt(pgDetectMs)} ms` },
    { figure: 'Redis SIGKILL → "fallback-mode" in /admin/status', value: `${fmt(redisDetectMs)} ms` },
    { figure: 'events queued while PostgreSQL was down', value: fmt(depth) },
    { figure: `replay of the queue (relay's "database recovered" replayMs)`, value: `${fmt(Number(recovered.replayMs))} ms for ${fmt(Number(recovered.replayed))} events` },
    { figure: 'PostgreSQL ready → "normal" in /admin/status', value: `${fmt(backToNormalMs)} ms` },
    { figure: 'Redis back → "ok" in /admin/status', value: `${fmt(redisRecoveryMs)} ms` },
    { figure: 'Redis-down throughput / normal', value: `${fmt((fallback.okTrue / fallback.ms) / (normal.okTrue / normal.ms), 2)}×` },
    { figure: 'PostgreSQL-down throughput / normal', value: `${fmt((degraded.okTrue / degraded.ms) / (normal.okTrue / normal.ms), 2)}×` },
    { figure: 'acknowledged / in PostgreSQL (verify-integrity)', value: `${fmt(acknowledged)} / ${fmt(integrity.checked)} — ok: ${integrity.ok}${integrity.ok ? '' : ' ' + integrity.problems.join('; ')}` },
  ]);
  const refused = [normal, degraded, duringReplay, fallback].flatMap((r) => [...r.reasons.entries()]);
  if (refused.length > 0) console.log(`\nOK false reasons: ${refused.map(([r, n]) => `${n}× ${r}`).join(', ')}`);
}

try {
  await main();
} catch (err) {
  console.error(`[outage-bench] failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await relay?.stop().catch(() => undefined);
  await relay?.cleanup().catch(() => undefined);
  await pgi?.stop().catch(() => undefined);
  await redis?.stop().catch(() => undefined);
  clearInterval(keepAlive);
}

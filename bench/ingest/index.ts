// Ingest benchmark: publish pre-signed events over K WebSocket connections and time every publish→OK,
// next to the signature verifiers' raw throughput (tiny-secp256k1 and, when built, native libsecp256k1 pools vs the
// @noble/secp256k1 baseline; bench/verify compares them in more placements).
//
//   npx tsx bench/ingest/index.ts [--events 20000] [--connections 4] [--window 128] [--url ws://127.0.0.1:7777]
//     [--cpu-prof DIR]
//
// Next to the relay it measures, in the same run, the database ceiling: the same rows written by plain `pg`
// clients into a fresh relay schema (db-ceiling.ts). --cpu-prof profiles the relay child (node --cpu-prof) and
// prints self time by component and the hottest functions.
//
// Without --url it starts its own relay (relay/dist/main.js) on loopback with a fresh database, a random Redis
// key prefix and a temp data dir, and removes all of them afterwards.
import { cpus, loadavg } from 'node:os';
import WebSocket from 'ws';
import type { VerifiedEvent } from 'nostr-tools/pure';
import { assertLoopback, intOption, parseArgs } from '../lib/args.js';
import { generateSignedEventsParallel } from '../lib/events.js';
import { startRelayChild, type RelayChild } from '../lib/relay-child.js';
import { perSecond, summarize } from '../lib/stats.js';
import { fmt, printTable } from '../lib/table.js';
import { measureNoble, measurePool, nativeAvailable } from '../lib/verify-throughput.js';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { summariseProfile } from '../lib/cpu-profile.js';
import { databaseCeiling } from './db-ceiling.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string' },
    connections: { type: 'string' },
    window: { type: 'string' },
    url: { type: 'string' },
    'verify-workers': { type: 'string' },
    'verify-events': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log('usage: npx tsx bench/ingest/index.ts [--events 20000] [--connections 4] [--window 128] [--url ws://127.0.0.1:PORT]\n' +
    '  [--verify-workers N (relay and pool; default cores)] [--verify-events 4000] [--timeout-ms 60000 (stall limit)] [--cpu-prof DIR]');
  process.exit(0);
}
const cores = cpus().length;
const totalEvents = intOption(values, 'events', 20_000);
const connections = intOption(values, 'connections', 4);
const windowSize = intOption(values, 'window', 128);
const verifyWorkers = intOption(values, 'verify-workers', cores);
const verifyEvents = intOption(values, 'verify-events', 4_000);
const stallMs = intOption(values, 'timeout-ms', 60_000);
const targetUrl = values.url ? assertLoopback(values.url).toString() : undefined;

interface IngestResult {
  sent: number;
  okTrue: number;
  okFalse: number;
  missing: number;
  falseReasons: Map<string, number>;
  latenciesMs: number[];
  ms: number;
  closedEarly: number;
}

/** One connection publishes its share with at most `window` events awaiting OK (pipelined, bounded client buffer). */
function publishShare(url: string, events: VerifiedEvent[], window: number, result: IngestResult, sockets: Set<WebSocket>, onProgress: () => void): Promise<void> {
  return new Promise((resolveShare) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.add(ws);
    const sentAt = new Map<string, number>();
    let next = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      // Whatever never got an OK counts as missing, not as a failure of the relay's judgement.
      result.missing += sentAt.size + (events.length - next);
      ws.terminate();
      sockets.delete(ws);
      resolveShare();
    };
    const pump = () => {
      while (next < events.length && sentAt.size < window && ws.readyState === WebSocket.OPEN) {
        const ev = events[next++]!;
        sentAt.set(ev.id, performance.now());
        ws.send(`["EVENT",${JSON.stringify(ev)}]`);
        result.sent++;
      }
      if (next >= events.length && sentAt.size === 0) finish();
    };
    ws.on('open', pump);
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (!Array.isArray(msg) || msg[0] !== 'OK') return;
      const t0 = sentAt.get(msg[1] as string);
      if (t0 === undefined) return;
      sentAt.delete(msg[1] as string);
      result.latenciesMs.push(performance.now() - t0);
      if (msg[2] === true) result.okTrue++;
      else {
        result.okFalse++;
        const reason = String(msg[3] ?? '').split(':')[0] || '(none)';
        result.falseReasons.set(reason, (result.falseReasons.get(reason) ?? 0) + 1);
      }
      onProgress();
      pump();
    });
    ws.on('error', (err) => {
      console.error(`connection error: ${err.message}`);
      result.closedEarly++;
      finish();
    });
    ws.on('close', () => {
      if (!done) result.closedEarly++;
      finish();
    });
  });
}

async function runIngest(url: string, events: VerifiedEvent[]): Promise<IngestResult> {
  const result: IngestResult = { sent: 0, okTrue: 0, okFalse: 0, missing: 0, falseReasons: new Map(), latenciesMs: [], ms: 0, closedEarly: 0 };
  const shares: VerifiedEvent[][] = Array.from({ length: connections }, () => []);
  events.forEach((ev, i) => shares[i % connections]!.push(ev));
  let lastProgress = performance.now();
  const conns: Array<Promise<void>> = [];
  const started = performance.now();
  // A stalled relay must not hang the benchmark: give up after stallMs without a single OK.
  let stalled = false;
  const openSockets = new Set<WebSocket>();
  const watchdog = setInterval(() => {
    if (performance.now() - lastProgress > stallMs) {
      stalled = true;
      console.error(`no OK for ${stallMs} ms; giving up`);
      for (const ws of openSockets) ws.terminate();
    }
  }, 1_000);
  for (const share of shares) conns.push(publishShare(url, share, windowSize, result, openSockets, () => (lastProgress = performance.now())));
  await Promise.all(conns);
  clearInterval(watchdog);
  result.ms = performance.now() - started;
  if (stalled) console.error('ingest stopped early because the relay stalled');
  return result;
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

async function main(): Promise<void> {
  console.log(`ingest bench: ${totalEvents} events, ${connections} connections, window ${windowSize}/connection, ${cores} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const signStarted = performance.now();
  const events = await generateSignedEventsParallel(Math.max(totalEvents, verifyEvents));
  log(`signed ${events.length} events in ${fmt(performance.now() - signStarted)} ms`);

  // Verifier throughput first, while nothing else of ours is using the CPU.
  const verifyItems = events.slice(0, verifyEvents);
  // noble is ~10x slower; a smaller sample keeps its rounds to a few seconds.
  const nobleItems = verifyItems.slice(0, Math.min(verifyItems.length, 1_000));
  const noble = await measureNoble(nobleItems);
  const pool1 = await measurePool(verifyItems, 1, cores);
  const poolN = verifyWorkers > 1 ? await measurePool(verifyItems, verifyWorkers, cores) : undefined;
  // The relay started below uses the native addon when it is built (verifier: auto), so its figure belongs here too.
  const nativePool = nativeAvailable().ok ? await measurePool(verifyItems, Math.max(1, verifyWorkers), cores, undefined, 'native') : undefined;
  const rows = [noble, pool1, ...(poolN ? [poolN] : []), ...(nativePool ? [nativePool] : [])].map((r) => ({
    verifier: r.name,
    threads: r.threads,
    items: r.items,
    'verif/s': Math.round(r.perSecond),
    'verif/s/core': Math.round(r.perSecondPerCore),
    'vs noble/core': `${(r.perSecondPerCore / noble.perSecondPerCore).toFixed(1)}x`,
    'worst round verif/s': Math.round(r.worstPerSecond),
    failed: r.failures,
  }));
  printTable(`Signature verification, best of ${noble.rounds} rounds (baseline: @noble/secp256k1, same run)`, rows);

  let relay: RelayChild | undefined;
  const stop = async () => {
    if (relay) await relay.cleanup();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    let url = targetUrl;
    if (!url) {
      log('starting relay child (fresh database, random Redis prefix, temp data dir)');
      // Rate limits off: this measures ingest capacity, not the limiter.
      const profDir = values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined;
      if (profDir) mkdirSync(profDir, { recursive: true });
      relay = await startRelayChild(['--verify-workers', String(verifyWorkers), '--rate-limits', '', '--log-level', 'warn'], { nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
      url = relay.url;
      log(`relay listening at ${url}`);
    }
    const ingestEvents = events.slice(0, totalEvents);
    const r = await runIngest(url, ingestEvents);
    const lat = summarize(r.latenciesMs);
    printTable(`Ingest via ${url}${relay ? ' (relay started by this bench)' : ''}`, [
      {
        events: totalEvents,
        conns: connections,
        'events/s': Math.round(perSecond(r.okTrue + r.okFalse, r.ms)),
        'p50 ms': fmt(lat.p50, 1),
        'p95 ms': fmt(lat.p95, 1),
        'p99 ms': fmt(lat.p99, 1),
        'max ms': fmt(lat.max, 1),
        'OK true': r.okTrue,
        'OK false': r.okFalse,
        missing: r.missing,
      },
    ]);
    if (r.falseReasons.size) console.log(`  OK false reasons: ${[...r.falseReasons].map(([k, v]) => `${k}=${v}`).join(', ')}`);
    if (r.closedEarly) console.log(`  connections closed early: ${r.closedEarly}`);
    if (r.missing > 0 || r.okFalse > 0) process.exitCode = 1;
    await stop();
    relay = undefined;
    const ceiling = await databaseCeiling(ingestEvents, 4, 500);
    printTable('Baseline, same run: the database ceiling (same rows, plain pg, 4 clients x batches of 500, no verify/Redis/WebSocket)', [
      { 'events/s': Math.round(ceiling.eventsPerSecond), 'relay share of the ceiling': `${Math.round((100 * perSecond(r.okTrue + r.okFalse, r.ms)) / ceiling.eventsPerSecond)} %` },
    ]);
    if (values['cpu-prof']) printProfile(resolve(values['cpu-prof']));
  } finally {
    await stop();
  }
}

/** The newest .cpuprofile in dir (the relay child writes it on exit). */
function printProfile(dir: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  const newest = files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) return console.log(`no .cpuprofile in ${dir}`);
  const p = summariseProfile(newest);
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  printTable(`Relay CPU profile (${newest}; ${fmt(p.totalMs / 1000, 1)} s of main-thread wall time): self time by component`,
    p.byComponent.map((c) => ({ component: c.component, 'self ms': fmt(c.ms), share: pct(c.share) })));
  printTable('Hottest functions by self time', p.hottest.map((f) => ({ function: f.fn, where: f.where, 'self ms': fmt(f.ms), share: pct(f.share) })));
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exitCode = 1;
});

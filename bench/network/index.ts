// Relay network benchmark, loopback only: real relay processes whose peer links go through chaos sidecars.
//
//   npx tsx bench/network/index.ts [--latency-events 500] [--divergent 10000] [--heartbeat-ms 1000]
//     [--peer-limits off|default] [--only latency,heal,crash,identical] [--identical 1000000]
//
// --peer-limits default keeps the relay's own peer budget (peer:*:20000/10s) and reputation with auto-bans, so the
// heal shows whether honest peers pace themselves under it (bans and the lowest peer score are printed); client
// limits stay lifted so the setup can publish fast. Default: every limit lifted (the speed of the path itself).
//
// Prints: cross-relay delivery latency (publish on A → live EVENT on a subscriber of B, p50/p99; targets
// ≤ 5 ms / ≤ 20 ms), convergence time after healing a partition with N divergent events (half published on
// each side; target ≤ 5 s, runbook < 30 s), crash detection time (SIGKILL → peer marked down) and rejoin time
// (restart → link up and caught up), and the identical-set check over N events (default 1,000,000; cold: every
// window summarised afresh; warm: settled by cached window fingerprints; target ≤ 1 s). Uses fresh databases and
// removes everything when done.
import { cpus, loadavg } from 'node:os';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { intOption, parseArgs } from '../lib/args.js';
import { generateSignedEventsParallel } from '../lib/events.js';
import { summarize } from '../lib/stats.js';
import { fmt, printTable } from '../lib/table.js';
import { nodeIdOf, peersOf, startNetwork, storedIds, syncNow, waitFor, type Network } from '../../test/helpers/cluster.js';
import { measureIdentical } from './identical.js';
import { publishAll } from './publisher.js';

const { values } = parseArgs({
  options: {
    'latency-events': { type: 'string' },
    divergent: { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'peer-limits': { type: 'string' },
    only: { type: 'string' },
    identical: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log('usage: npx tsx bench/network/index.ts [--latency-events 500] [--divergent 10000] [--heartbeat-ms 1000] [--peer-limits off|default] [--only latency,heal,crash,identical] [--identical 1000000]');
  process.exit(0);
}
const peerLimits = values['peer-limits'] ?? 'off';
if (peerLimits !== 'off' && peerLimits !== 'default') throw new Error(`--peer-limits: off or default, not ${peerLimits}`);
const parts = new Set((values.only ?? 'latency,heal,crash,identical').split(',').map((p) => p.trim()));
for (const p of parts) if (!['latency', 'heal', 'crash', 'identical'].includes(p)) throw new Error(`--only: latency, heal, crash or identical, not ${p}`);
const LIFTED = 'connection:*:10000000/10s,ip:*:10000000/10s,pubkey:*:10000000/10s';
const rateLimits = peerLimits === 'default' ? `${LIFTED},peer:*:20000/10s` : `${LIFTED},peer:*:10000000/10s`;
const latencyEvents = intOption(values, 'latency-events', 500);
const divergent = intOption(values, 'divergent', 10_000);
const heartbeatMs = intOption(values, 'heartbeat-ms', 1000);
const identicalEvents = intOption(values, 'identical', 1_000_000);
const log = (line: string) => console.log(line);

interface DeliverySamples {
  /** publish → OK on the relay published to (its accept: verify, commit). */
  ok: number[];
  /** publish → live EVENT on the subscriber. */
  delivered: number[];
  /** OK → live EVENT (forwarding, the sidecar, the other relay's ingest and fan-out). */
  afterOk: number[];
}

/** Publishes one event at a time on `pubNode` with a live subscriber on `subNode`; times each hop seen from outside. */
async function measureDelivery(net: Network, pubNode: string, subNode: string, tag: string): Promise<DeliverySamples> {
  const sub = new WebSocket(net.node(subNode).relay.url);
  const pub = new WebSocket(net.node(pubNode).relay.url);
  await Promise.all([sub, pub].map((ws) => new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))));
  const sentAt = new Map<string, number>();
  const okAt = new Map<string, number>();
  const out: DeliverySamples = { ok: [], delivered: [], afterOk: [] };
  let arrived: (() => void) | undefined;
  pub.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as unknown[];
    if (frame[0] !== 'OK' || frame[2] !== true) return;
    const t0 = sentAt.get(frame[1] as string);
    if (t0 === undefined) return;
    okAt.set(frame[1] as string, performance.now());
    out.ok.push(performance.now() - t0);
  });
  sub.on('message', (data: Buffer) => {
    const now = performance.now();
    const frame = JSON.parse(data.toString()) as unknown[];
    if (frame[0] !== 'EVENT' || frame[1] !== 'lat') return;
    const id = (frame[2] as { id: string }).id;
    const t0 = sentAt.get(id);
    if (t0 === undefined) return;
    out.delivered.push(now - t0);
    const ok = okAt.get(id);
    if (ok !== undefined) out.afterOk.push(now - ok);
    sentAt.delete(id);
    arrived?.();
  });
  sub.send(JSON.stringify(['REQ', 'lat', { kinds: [1], '#t': [tag], limit: 0 }]));
  await new Promise((r) => setTimeout(r, 300));
  const key = generateSecretKey();
  for (let i = 0; i < latencyEvents; i++) {
    const e = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['t', tag]], content: `latency ${i} ${Math.random()}` }, key);
    const got = new Promise<void>((resolve) => (arrived = resolve));
    sentAt.set(e.id, performance.now());
    pub.send(JSON.stringify(['EVENT', e]));
    await Promise.race([got, new Promise((r) => setTimeout(r, 2000))]);
    // The OK may trail the forwarded copy: give it a moment so the next event starts on a quiet relay.
    await new Promise((r) => setTimeout(r, 2));
  }
  sub.close();
  pub.close();
  return out;
}

async function identical(net: Network): Promise<boolean> {
  const [a, b] = await Promise.all(['a', 'b'].map((n) => storedIds(net.node(n).relay)));
  return a!.duplicates === 0 && b!.duplicates === 0 && JSON.stringify(a!.ids) === JSON.stringify(b!.ids);
}

async function measureConvergence(net: Network) {
  log(`signing ${divergent} events...`);
  const events = await generateSignedEventsParallel(divergent, { authors: 100 });
  const half = Math.floor(divergent / 2);
  await net.cut('a', 'b', { existing: 'reset' });
  await net.cut('b', 'a', { existing: 'reset' });
  await waitFor('partition seen', async () => (await peersOf(net.node('a').relay))[0]?.state === 'down' && (await peersOf(net.node('b').relay))[0]?.state === 'down', 30_000);
  log(`partitioned; publishing ${half} events on a and ${divergent - half} on b...`);
  await Promise.all([publishAll(net.node('a').relay.url, events.slice(0, half)), publishAll(net.node('b').relay.url, events.slice(half))]);
  const healed = performance.now();
  await net.heal('a', 'b');
  await net.heal('b', 'a');
  const linkUp = await waitFor('link up', async () => ((await peersOf(net.node('a').relay))[0]?.state === 'up' ? performance.now() - healed : 0), 60_000, 20);
  await waitFor('identical sets', () => identical(net), 120_000, 100);
  const converged = performance.now() - healed;
  const after = await Promise.all([syncNow(net.node('a').relay), syncNow(net.node('b').relay)]);
  const diffs = after.flat().map((r) => (r.lastDifferences ? r.lastDifferences.need + r.lastDifferences.have : -1));
  const total = (await storedIds(net.node('a').relay)).ids.length;
  const bans = (await Promise.all(['a', 'b'].map((n) => net.node(n).relay.admin<{ bans: unknown[] }>('/admin/bans')))).map((r) => r.body.bans.length);
  const scores = await Promise.all(['a', 'b'].map((n) => net.node(n).relay.admin<{ scores: Array<{ type: string; score: number }> }>('/admin/reputation/scores')));
  const lowestPeerScore = Math.min(100, ...scores.flatMap((r) => r.body.scores.filter((v) => v.type === 'peer').map((v) => v.score)));
  return { linkUp, converged, diffsAfter: diffs.join('/'), total, bans: bans.join('/'), lowestPeerScore };
}

async function measureCrash(net: Network) {
  const idB = await nodeIdOf(net.node('b').relay);
  const a = net.node('a').relay;
  const killed = performance.now();
  await net.node('b').relay.kill();
  const detect = await waitFor('b marked down', async () => ((await peersOf(a)).find((p) => p.nodeId === idB)?.state === 'down' ? performance.now() - killed : 0), 60_000, 10);
  const missed = await generateSignedEventsParallel(200, { authors: 10 });
  await publishAll(a.url, missed, 2);
  const restarted = performance.now();
  await net.node('b').restart();
  const processUp = performance.now() - restarted;
  const linkUp = await waitFor('b up on a', async () => ((await peersOf(a)).find((p) => p.nodeId === idB)?.state === 'up' ? performance.now() - restarted : 0), 60_000, 10);
  await waitFor('b caught up', () => identical(net), 60_000, 50);
  return { detect, processUp, linkUp, caughtUp: performance.now() - restarted };
}

log(`relay network benchmark: 2 relays behind chaos sidecars on loopback; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; heartbeat ${heartbeatMs} ms, timeout ${3 * heartbeatMs} ms; peer limits ${peerLimits === 'default' ? 'default (peer:*:20000/10s, auto-bans on)' : 'lifted'}`);
const net = await startNetwork({
  names: ['a', 'b'],
  heartbeatIntervalMs: heartbeatMs,
  heartbeatTimeoutMs: 3 * heartbeatMs,
  // The benchmark floods on purpose: lift the client rate limits (and the peer budget unless --peer-limits default);
  // disable periodic sync so only heal-time sync runs.
  args: ['--rate-limits', rateLimits],
  syncIntervalMs: 0,
});
try {
  await waitFor('peers up', async () => (await peersOf(net.node('a').relay))[0]?.state === 'up' && (await peersOf(net.node('b').relay))[0]?.state === 'up', 60_000);
  if (parts.has('latency')) {
    const cross = await measureDelivery(net, 'a', 'b', 'cross');
    const local = await measureDelivery(net, 'b', 'b', 'local');
    const row = (metric: string, samples: number[], target = '') => {
      const s = summarize(samples);
      return { metric, value: `${fmt(s.p50, 2)} / ${fmt(s.p99, 2)}  (n ${s.count})`, target };
    };
    printTable('Delivery hop by hop, p50 / p99 ms (one event at a time; each hop timed from outside)', [
      row('publish on a → OK from a (a accepts: verify, commit)', cross.ok),
      row('OK from a → live EVENT on b (forward, sidecar-a, b ingests and fans out)', cross.afterOk),
      row('publish on a → live EVENT on a subscriber of b (end to end)', cross.delivered, '≤ 2 / ≤ 10'),
      row('baseline, same run: publish on b → live EVENT on b (b alone)', local.delivered),
    ]);
  }
  if (parts.has('heal')) {
    const conv = await measureConvergence(net);
    printTable(`Partition heal with ${divergent} divergent events (half on each side)`, [
      { metric: 'link up after heal, ms', value: fmt(conv.linkUp), target: '' },
      { metric: 'identical id sets after heal, ms', value: fmt(conv.converged), target: '≤ 5000 (runbook < 30000)' },
      { metric: 'events per relay', value: fmt(conv.total), target: '' },
      { metric: 'differences in the next negentropy rounds', value: conv.diffsAfter, target: '0/0' },
      { metric: 'bans on a/b after the heal', value: conv.bans, target: '0/0' },
      { metric: 'lowest peer reputation score (100 = clean)', value: fmt(conv.lowestPeerScore), target: '100' },
    ]);
  }
  if (parts.has('crash')) {
    const crash = await measureCrash(net);
    printTable('Crash (SIGKILL b) and rejoin', [
      { metric: 'b marked down on a after, ms', value: fmt(crash.detect), target: `≤ ${2 * heartbeatMs} (two heartbeats)` },
      { metric: 'restarted b listening after, ms', value: fmt(crash.processUp), target: '' },
      { metric: 'link a→b up after restart, ms', value: fmt(crash.linkUp), target: '' },
      { metric: 'b caught up (200 events) after restart, ms', value: fmt(crash.caughtUp), target: '' },
    ]);
  }
  if (parts.has('identical')) {
    // Last: it leaves both databases holding N rows (unsigned: never fetched, as both sides hold them all).
    const r = await measureIdentical(net, identicalEvents, log);
    const windows = (e: typeof r.cold) => `${e.lastWindows?.total ?? '-'} (${e.lastWindows?.identical ?? '-'} by fingerprint)`;
    printTable(`Identical-set check over ${fmt(r.events)} events (sync_window_records 50,000)`, [
      { metric: 'cold run (windows summarised afresh), ms', value: fmt(r.coldMs), target: '' },
      { metric: 'cold: windows', value: windows(r.cold), target: '' },
      { metric: 'warm run (cached window fingerprints), ms', value: fmt(r.warmMs), target: '≤ 1000' },
      { metric: 'warm: windows / round trips', value: `${windows(r.warm)} / ${r.warm.lastRounds}`, target: '' },
      { metric: 'differences found cold / warm', value: `${JSON.stringify(r.cold.lastDifferences)} / ${JSON.stringify(r.warm.lastDifferences)}`, target: '0 / 0' },
      { metric: 'errors', value: `${r.cold.lastError ?? 'none'} / ${r.warm.lastError ?? 'none'}`, target: 'none' },
      { metric: 'relay RSS a/b before, MB', value: r.rssMb.before.join(' / '), target: '' },
      { metric: 'relay RSS a/b peak during the runs, MB', value: r.rssMb.peak.join(' / '), target: '' },
    ]);
  }
} finally {
  await net.stop();
}

// Fan-out benchmark: many client connections, each holding live subscriptions, while events are ingested at a steady
// rate. Prints, in one run, a baseline with few connections and the full run: fan-out latency (publish sent → live
// EVENT received by every matching subscriber, p50/p99), deliveries received vs expected, and the relay's RSS.
//
//   npx tsx bench/fanout/index.ts [--connections 10000] [--subs 2] [--rate 1000] [--seconds 20] [--topics 5000]
//     [--baseline-connections 100]
//
// Each event carries one of `topics` topic tags; connection c subscribes to topics 2c and 2c+1 (mod topics), so an
// event matches connections*subs/topics subscriptions (4 with the defaults: 4,000 deliveries a second). The relay
// is started by the bench (relay/dist/main.js, fresh database) with client limits lifted: one loopback address holds
// every connection, and one publisher sends the whole rate. Target (issue 13): RSS ≤ 1 GB, fan-out p99 ≤ 50 ms.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import WebSocket from 'ws';
import type { VerifiedEvent } from 'nostr-tools/pure';
import { intOption, parseArgs } from '../lib/args.js';
import { generateSignedEventsParallel } from '../lib/events.js';
import { startRelayChild, type RelayChild } from '../lib/relay-child.js';
import { summarize } from '../lib/stats.js';
import { fmt, printTable } from '../lib/table.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string' },
    subs: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    topics: { type: 'string' },
    'baseline-connections': { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log('usage: npx tsx bench/fanout/index.ts [--connections 10000] [--subs 2] [--rate 1000] [--seconds 20] [--topics 5000] [--baseline-connections 100]');
  process.exit(0);
}
const connections = intOption(values, 'connections', 10_000);
const subs = intOption(values, 'subs', 2);
const rate = intOption(values, 'rate', 1000);
const seconds = intOption(values, 'seconds', 20);
const topics = intOption(values, 'topics', 5000);
const baselineConnections = intOption(values, 'baseline-connections', 100);
const log = (line: string) => console.log(line);

const LIFTED = [
  '--rate-limits', 'connection:*:100000000/10s,ip:*:100000000/10s,pubkey:*:100000000/10s,peer:*:100000000/10s',
  '--max-connections-per-ip', '0', '--max-subscriptions-per-ip', '0', '--req-rate-per-ip', '0',
  '--max-connections', String(connections + 1000),
];

/** Resident and peak resident memory of a process, MB (Linux /proc). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

interface Subscriber {
  ws: WebSocket;
}

async function openSubscribers(relay: RelayChild, count: number, offset: number, onEvent: (id: string) => void): Promise<Subscriber[]> {
  const out: Subscriber[] = [];
  const BATCH = 200;
  for (let start = 0; start < count; start += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, count - start) }, (_, i) => {
        const c = offset + start + i;
        return new Promise<Subscriber>((resolve, reject) => {
          const ws = new WebSocket(relay.url, { perMessageDeflate: false });
          let eosed = 0;
          ws.once('error', reject);
          ws.once('open', () => {
            for (let s = 0; s < subs; s++) ws.send(JSON.stringify(['REQ', `s${s}`, { kinds: [1], '#t': [`topic-${(subs * c + s) % topics}`], limit: 0 }]));
          });
          ws.on('message', (data: Buffer) => {
            const text = data.toString();
            if (text.startsWith('["EOSE"')) {
              if (++eosed === subs) resolve({ ws });
              return;
            }
            if (!text.startsWith('["EVENT"')) return;
            // The id is the first field of the event object as the relay serialises it; parse only when it is not.
            const m = /"id":"([0-9a-f]{64})"/.exec(text);
            if (m) onEvent(m[1]!);
          });
        });
      }),
    );
    out.push(...batch);
  }
  return out;
}

interface PhaseResult {
  connections: number;
  sent: number;
  acked: number;
  expected: number;
  received: number;
  latency: ReturnType<typeof summarize>;
  rssBefore: number;
  rssPeak: number;
  sendSeconds: number;
}

async function phase(relay: RelayChild, events: VerifiedEvent[], count: number): Promise<PhaseResult> {
  const sentAt = new Map<string, number>();
  const samples: number[] = [];
  let received = 0;
  const onEvent = (id: string) => {
    const t0 = sentAt.get(id);
    if (t0 === undefined) return;
    received++;
    samples.push(performance.now() - t0);
  };
  const rssBefore = memoryOf(relay.child.pid!).rss;
  log(`  opening ${count} connections with ${subs} subscriptions each...`);
  const subscribers = await openSubscribers(relay, count, 0, onEvent);
  // Subscriptions per topic: connection c holds topics (subs*c + s) % topics.
  const perTopic = new Uint32Array(topics);
  for (let c = 0; c < count; c++) for (let s = 0; s < subs; s++) perTopic[(subs * c + s) % topics]!++;
  const pub = new WebSocket(relay.url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => (pub.once('open', resolve), pub.once('error', reject)));
  let acked = 0;
  const refused = new Map<string, number>();
  pub.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString()) as unknown[];
    if (f[0] === 'OK' && f[2] === true) acked++;
    else if (f[0] === 'OK') refused.set(String(f[3]).slice(0, 80), (refused.get(String(f[3]).slice(0, 80)) ?? 0) + 1);
  });
  log(`  publishing ${events.length} events at ${rate}/s...`);
  let expected = 0;
  const started = performance.now();
  const TICK_MS = 10;
  let next = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(events.length, Math.floor(((performance.now() - started) / 1000) * rate));
      for (; next < due; next++) {
        const e = events[next]!;
        expected += perTopic[Number(e.tags[1]![1]!.slice('topic-'.length))]!;
        sentAt.set(e.id, performance.now());
        pub.send(JSON.stringify(['EVENT', e]));
      }
      if (next >= events.length) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  const sendSeconds = (performance.now() - started) / 1000;
  // Deliveries still in flight get a few seconds to land.
  const deadline = Date.now() + 10_000;
  const answered = () => acked + [...refused.values()].reduce((a, b) => a + b, 0);
  while ((received < expected || answered() < events.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const rssPeak = memoryOf(relay.child.pid!).peak;
  pub.close();
  for (const s of subscribers) s.ws.terminate();
  await new Promise((r) => setTimeout(r, 1000));
  if (refused.size) log(`  refused: ${[...refused].map(([m, n]) => `${n} × ${m}`).join('; ')}`);
  if (answered() < events.length) log(`  ${events.length - answered()} events had no OK within the wait`);
  return { connections: count, sent: events.length, acked, expected, received, latency: summarize(samples), rssBefore, rssPeak, sendSeconds };
}

log(`fan-out benchmark: ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${connections} connections x ${subs} subscriptions, ${rate} events/s for ${seconds} s, ${topics} topics`);
const total = rate * seconds;
log(`signing ${2 * total} events...`);
const events = await generateSignedEventsParallel(2 * total, { authors: 200, topics, contentBytes: 200 });
const relay = await startRelayChild(LIFTED);
try {
  log(`baseline: ${baselineConnections} connections`);
  const base = await phase(relay, events.slice(0, total), baselineConnections);
  log(`full: ${connections} connections`);
  const full = await phase(relay, events.slice(total), connections);
  const row = (metric: string, f: (r: PhaseResult) => string, target = '') => ({ metric, baseline: f(base), full: f(full), target });
  printTable(`Fan-out: ${rate} events/s for ${seconds} s; every connection holds ${subs} live subscriptions (load after: ${loadavg().map((l) => l.toFixed(2)).join(' ')})`, [
    row('connections', (r) => fmt(r.connections)),
    row('events sent / acknowledged', (r) => `${fmt(r.sent)} / ${fmt(r.acked)}`),
    row('send rate achieved, events/s', (r) => fmt(r.sent / r.sendSeconds)),
    row('deliveries received / expected', (r) => `${fmt(r.received)} / ${fmt(r.expected)}`, 'all'),
    row('fan-out p50 ms', (r) => fmt(r.latency.p50, 1)),
    row('fan-out p99 ms', (r) => fmt(r.latency.p99, 1), '≤ 50'),
    row('fan-out max ms', (r) => fmt(r.latency.max, 1)),
    row('relay RSS before connecting, MB', (r) => fmt(r.rssBefore)),
    row('relay RSS peak (VmHWM), MB', (r) => fmt(r.rssPeak), '≤ 1024'),
  ]);
} finally {
  await relay.cleanup();
}

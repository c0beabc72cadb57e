// Byzantine benchmark: how fast a forging peer is banned, what a flood at 10x the peer limit does to honest
// publish→OK latency, how many invalid events a relay refuses per second, and one row per client or peer attack
// (attacks.ts) against a pair of honest relays.
//
//   npx tsx bench/byzantine/index.ts [--only req-flood,peer-forged,...] [--seconds 5] [--relay-args='--flag value']
//                                    [--runs 5] [--peer-limit 50] [--invalid 20000] [--window 256]
//
// --only takes section names (ban-time, peer-flood-latency, reject-rate, attacks) and attack names; default: all.
// Starts its own relays (relay/dist/main.js) on loopback with fresh databases, Redis key prefixes and data dirs,
// and removes them afterwards. The attackers are their own processes (attacker.ts, test/helpers/malicious-node.ts).
// bench/byzantine/live.ts runs the same attacks against an already running cluster (`make up`).
import { createHash, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { intOption, parseArgs } from '../lib/args.js';
import { startRelayChild, type RelayChild } from '../lib/relay-child.js';
import { summarize } from '../lib/stats.js';
import { fmt, printTable } from '../lib/table.js';
import { NostrLink, craft, startMaliciousNode, type SignedEvent } from '../../test/helpers/malicious-node.js';
import { honest } from './honest.js';
import { ATTACKS, attackRow, type AttackRow } from './attacks.js';

const SECTIONS = ['ban-time', 'peer-flood-latency', 'reject-rate', 'attacks'];
const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    'peer-limit': { type: 'string' },
    seconds: { type: 'string' },
    invalid: { type: 'string' },
    window: { type: 'string' },
    only: { type: 'string' },
    'relay-args': { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log("usage: npx tsx bench/byzantine/index.ts [--only NAME,...] [--seconds 5] [--relay-args='--flag value ...'] [--runs 5] [--peer-limit 50] [--invalid 20000] [--window 256]");
  console.log(`sections: ${SECTIONS.join(', ')}; attacks: ${ATTACKS.map((a) => a.attack).join(', ')}`);
  process.exit(0);
}
const only = values.only ? values.only.split(',').map((x) => x.trim()).filter(Boolean) : undefined;
const unknown = (only ?? []).filter((n) => !SECTIONS.includes(n) && !ATTACKS.some((a) => a.attack === n));
if (unknown.length) {
  console.error(`--only: unknown ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')}; attacks: ${ATTACKS.map((a) => a.attack).join(', ')})`);
  process.exit(2);
}
const wanted = (section: string) => !only || only.includes(section);
// Extra relay flags for both relays of every attack row, e.g. --relay-args='--max-inflight-per-connection 64'.
const relayArgs = values['relay-args'] ? values['relay-args'].split(/\s+/).filter(Boolean) : [];
const attacks = ATTACKS.filter((a) => !only || only.includes('attacks') || only.includes(a.attack));
const runs = intOption(values, 'runs', 5);
const peerLimit = intOption(values, 'peer-limit', 50);
const seconds = intOption(values, 'seconds', 5);
const invalidCount = intOption(values, 'invalid', 20_000);
const windowSize = intOption(values, 'window', 256);

const relays: RelayChild[] = [];
async function relay(args: string[]): Promise<RelayChild> {
  const r = await startRelayChild([...args, '--log-level', 'warn']);
  relays.push(r);
  return r;
}

/** Time from the first forged event to the relay closing the link (the ban), per run. */
async function timeToBan(): Promise<{ toBan: number[]; toBanAfterThreshold: number[] }> {
  // Each run's forger is a configured peer (allow-listed node id): only those are peers; any other key is a client.
  const keys = Array.from({ length: runs }, () => generateSecretKey());
  const r = await relay(['--peer-node-ids', keys.map((k) => getPublicKey(k)).join(','), '--public-url', 'ws://127.0.0.1:{port}']);
  const toBan: number[] = [];
  const afterThreshold: number[] = [];
  for (let run = 0; run < runs; run++) {
    const key = keys[run]!;
    const link = await NostrLink.connect(r.url);
    const auth = await link.authenticate(key, r.url);
    if (!auth?.ok) throw new Error(`peer AUTH refused: ${auth?.message ?? 'no challenge'}`);
    const forged = Array.from({ length: 20 }, () => craft.forged(key));
    let first = 0;
    let crossing = NaN;
    const closed = link.closed.then(() => performance.now());
    for (const [n, event] of forged.entries()) {
      if (!link.open) break;
      const sent = performance.now();
      first ||= sent;
      // With the default penalty of 20 points, the fifth forged event takes a fresh peer to the threshold (0).
      if (n === 4) crossing = sent;
      void link.publish(event);
      await new Promise((res) => setTimeout(res, 10));
    }
    const at = await Promise.race([closed, new Promise<number>((res) => setTimeout(() => res(NaN), 10_000))]);
    toBan.push(at - first);
    afterThreshold.push(at - crossing);
    await link.close();
  }
  return { toBan, toBanAfterThreshold: afterThreshold };
}

async function floodLatency(): Promise<Array<Record<string, string | number>>> {
  const flooderKey = generateSecretKey();
  const r = await relay(['--rate-limits', `peer:*:${peerLimit}/1s`, '--reputation-penalties', 'rate-limit=0', '--peer-node-ids', getPublicKey(flooderKey), '--public-url', 'ws://127.0.0.1:{port}']);
  await honest(r.url, 2, 20, 1); // warm-up
  const normal = summarize((await honest(r.url, 4, 25, seconds)).map((s) => s.ms));
  // Niced like in the test: the attacker's own CPU would be on another machine.
  const flooder = startMaliciousNode(r.url, { flood: { perSecond: peerLimit * 10, seconds: seconds + 2 } }, { nice: 10, secretKey: flooderKey });
  await new Promise((res) => setTimeout(res, 1500)); // process start, signing, AUTH, flood at full rate
  const flooded = summarize((await honest(r.url, 4, 25, seconds)).map((s) => s.ms));
  const report = await flooder.report;
  const row = (name: string, s: ReturnType<typeof summarize>) => ({ condition: name, samples: s.count, 'p50 ms': fmt(s.p50, 1), 'p95 ms': fmt(s.p95, 1), 'p99 ms': fmt(s.p99, 1), 'max ms': fmt(s.max, 1) });
  return [
    row('no flood', normal),
    row(`flood ${peerLimit * 10}/s from one peer (limit ${peerLimit}/s)`, flooded),
    { condition: `flood answers: ${JSON.stringify(report.answers)}`, samples: report.sent, 'p50 ms': '', 'p95 ms': '', 'p99 ms': `ratio ${fmt(flooded.p99 / normal.p99, 2)}`, 'max ms': '' },
  ];
}

/**
 * Invalid events made cheaply from one signed event: `signature` recomputes the id over new content and keeps the
 * old signature (fails only the signature check); `id` gives a random id (fails the id check).
 */
function forgedBatch(count: number, kind: 'signature' | 'id'): string[] {
  const key = generateSecretKey();
  const base: SignedEvent = craft.valid(key);
  return Array.from({ length: count }, (_, i) => {
    const content = `forged ${i} ${base.content}`;
    const id =
      kind === 'id'
        ? randomBytes(32).toString('hex')
        : createHash('sha256').update(JSON.stringify([0, base.pubkey, base.created_at, base.kind, base.tags, content])).digest('hex');
    return JSON.stringify(['EVENT', { ...base, content, id }]);
  });
}

/** Invalid events pushed with `window` in flight; refusals per second. */
async function rejectRate(kind: 'signature' | 'id'): Promise<Record<string, string | number>> {
  // Penalties off: this measures refusal throughput, not how soon the sender is banned.
  const r = await relay(['--rate-limits', '', '--reputation-penalties', 'signature=0,id=0']);
  const frames = forgedBatch(invalidCount, kind);
  const link = await NostrLink.connect(r.url, { authenticate: false });
  let next = 0;
  let refused = 0;
  let other = 0;
  const started = performance.now();
  await new Promise<void>((done) => {
    const pump = () => {
      while (next < frames.length && next - refused - other < windowSize) {
        const frame = frames[next++]!;
        const id = (JSON.parse(frame) as [string, { id: string }])[1].id;
        void link.publishFrame(id, frame).then((a) => {
          if (!a.ok && a.message.startsWith('invalid:')) refused++;
          else other++;
          if (refused + other === frames.length) done();
          else pump();
        });
      }
    };
    pump();
  });
  const ms = performance.now() - started;
  await link.close();
  return { 'invalid kind': kind === 'id' ? 'altered (id mismatch)' : 'forged signature', events: frames.length, refused, 'not refused': other, 'seconds': fmt(ms / 1000, 2), 'refused/s': fmt((refused * 1000) / ms) };
}

try {
  console.log(`byzantine bench: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (wanted('ban-time')) {
    const ban = await timeToBan();
    const toBan = summarize(ban.toBan);
    const afterThreshold = summarize(ban.toBanAfterThreshold);
    printTable(`time to ban a forging peer (${runs} runs, a forged event every 10 ms, default penalties)`, [
      { measure: 'first forged event → link closed', 'p50 ms': fmt(toBan.p50, 1), 'max ms': fmt(toBan.max, 1) },
      { measure: 'threshold-crossing event → link closed', 'p50 ms': fmt(afterThreshold.p50, 1), 'max ms': fmt(afterThreshold.max, 1) },
    ]);
  }
  if (wanted('peer-flood-latency')) printTable('honest publish→OK, 4 clients x 25 events/s', await floodLatency());
  if (wanted('reject-rate')) printTable('invalid events rejected', [await rejectRate('signature'), await rejectRate('id')]);
  if (attacks.length) {
    const rows: AttackRow[] = [];
    for (const spec of attacks) {
      const started = performance.now();
      rows.push(await attackRow(spec, seconds, relayArgs));
      console.error(`  ${spec.attack}: ${fmt((performance.now() - started) / 1000, 1)} s (load ${loadavg()[0]!.toFixed(2)})`);
    }
    const head = `attacks on relay A of an honest pair (A dials B${relayArgs.length ? `; both with ${relayArgs.join(' ')}` : ''}); honest: 4 clients x 25 events/s + 1 reader x 10 REQ/s on A for ${seconds} s without, then during; ms`;
    printTable(`${head}: honest side (goal: ratios <= 2x, 0 honest bans, mode normal, link up)`, rows.map((r) => r.honest));
    printTable('the same attacks: attacker side (client attacks from 127.0.0.9, peer attacks from an allow-listed node id)', rows.map((r) => r.attacker));
    console.log(`\nload average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }
} finally {
  await Promise.all(relays.map((r) => r.cleanup()));
}

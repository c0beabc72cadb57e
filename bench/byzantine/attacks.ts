// One row per attack, each on a fresh pair of honest relays (A dials B): honest publish→OK and REQ→EOSE p50/p99 on
// A without the attack and during it (same relays, same run), the ratio, RSS growth of A and B, bans on the honest
// side (A or B banning each other or the honest clients' address: must be none), both relays' mode (must stay
// normal), whether the A–B link stayed up, and how the attacker was isolated (first refusal, disconnection, reconnect).
// Client attacks come from 127.0.0.9; peer attacks from a Byzantine node id on both relays' allow-lists. The
// attacker is its own niced process (a real one would be another machine); the dialled-peer row is an in-process
// server on one of A's peer URLs (dialled.ts).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { REPO_ROOT } from '../lib/relay-child.js';
import { summarize } from '../lib/stats.js';
import { fmt } from '../lib/table.js';
import type { Attack, AttackerReport, Plan } from './plan.js';
import { startDialledAttacker, type DialledAttacker } from './dialled.js';
import { honest, reader } from './honest.js';
import { bansOf, linked, modeOf, rssMb, startPair } from './pair.js';

export const ATTACKER_ADDRESS = '127.0.0.9';
/** A's peer budget in the peer-flood row: low enough that a flood from one process passes it many times over. */
const FLOOD_PEER_BUDGET = 'peer:*:1000/10s';

export const ATTACKS: Array<{ attack: Attack | 'dialled-big-frame'; what: string; aArgs?: string[] }> = [
  { attack: 'req-flood', what: 'client: REQ flood (50-event queries)' },
  { attack: 'close-flood', what: 'client: CLOSE flood, 100 KB ids' },
  { attack: 'neg-open-flood', what: 'client: NEG-OPEN flood' },
  { attack: 'event-flood', what: 'client: valid EVENT flood past the limits' },
  { attack: 'forged-flood', what: 'client: forged-signature EVENT flood' },
  { attack: 'gossip-flood', what: 'client: malformed kind-20780 via A (gossip-through-honest)' },
  { attack: 'auth-client-flood', what: 'client: AUTH with a random key, then EVENT flood' },
  { attack: 'conn-flood', what: 'client: 600 connections from one address' },
  { attack: 'peer-flood', what: `peer: valid EVENT flood past its budget (${FLOOD_PEER_BUDGET})`, aArgs: ['--rate-limits', `connection:*:2000/10s,ip:*:10000/10s,pubkey:*:2000/10s,${FLOOD_PEER_BUDGET}`] },
  { attack: 'peer-gossip', what: 'peer: relays malformed kind-20780 (random authors)' },
  { attack: 'peer-forged', what: 'peer: forged-signature EVENT flood' },
  { attack: 'peer-big-frame', what: 'peer: 64 MB frames' },
  { attack: 'dialled-big-frame', what: 'relay A dials: 64 MB frames on open' },
];

function runAttacker(plan: Plan): Promise<AttackerReport> {
  const child = spawn('nice', ['-n', '10', process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bench/byzantine/attacker.ts'), JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"type":"report"'));
      if (line) resolve(JSON.parse(line) as AttackerReport);
      else reject(new Error(`attacker ${plan.attack} exited (${code}) without a report: ${err.slice(-1500)}`));
    }),
  );
}

/** Honest publishers (4 x 25 events/s) and one reader (10 REQ/s) on `url` for `seconds`. */
async function honestLoad(url: string, seconds: number, refusals: Map<string, number>) {
  const note = (m: string) => refusals.set(m.split(':', 1)[0]!, (refusals.get(m.split(':', 1)[0]!) ?? 0) + 1);
  const [published, eose] = await Promise.all([honest(url, 4, 25, seconds, note), reader(url, seconds, 100, note)]);
  return { publish: summarize(published.map((s) => s.ms)), eose: summarize(eose) };
}

const pair = (without: number, during: number) => `${fmt(without, 1)} / ${fmt(during, 1)}`;

export interface AttackRow {
  /** Honest side: latencies, RSS, bans, mode, link. */
  honest: Record<string, string | number>;
  /** Attacker side: how it was answered and isolated. */
  attacker: Record<string, string | number>;
}

export async function attackRow(spec: (typeof ATTACKS)[number], seconds: number, relayArgs: string[] = []): Promise<AttackRow> {
  const byzKey = generateSecretKey();
  const byzId = getPublicKey(byzKey);
  const dialled: DialledAttacker | undefined = spec.attack === 'dialled-big-frame' ? await startDialledAttacker() : undefined;
  const p = await startPair([byzId], spec.aArgs ?? [], dialled ? [dialled.url] : [], relayArgs).catch(async (err: unknown) => {
    await dialled?.close();
    throw err;
  });
  try {
    await honestLoad(p.a.url, 1, new Map()); // warm-up
    const without = await honestLoad(p.a.url, seconds, new Map());
    const rss0 = { a: rssMb(p.a.child.pid!), b: rssMb(p.b.child.pid!) };
    const peak = { ...rss0 };
    const sampler = setInterval(() => {
      peak.a = Math.max(peak.a, rssMb(p.a.child.pid!));
      peak.b = Math.max(peak.b, rssMb(p.b.child.pid!));
    }, 100);
    // The A–B link, sampled during the attack: a flap (heartbeat timeout, reconnect) shows even if it is back by the end.
    const link = { samples: 0, down: 0 };
    const linkSampler = setInterval(() => {
      void linked(p).then((ok) => {
        link.samples++;
        if (!ok) link.down++;
      });
    }, 500);
    const refusals = new Map<string, number>();
    const isPeer = spec.attack.startsWith('peer-');
    dialled?.arm();
    const attacker = dialled
      ? new Promise<AttackerReport>((res) => setTimeout(() => res(dialled.disarm()), (seconds + 2) * 1000))
      : runAttacker({
          attack: spec.attack as Attack,
          url: p.a.url,
          seconds: seconds + 2,
          localAddress: ATTACKER_ADDRESS,
          ...(isPeer ? { secretKey: Buffer.from(byzKey).toString('hex') } : {}),
        });
    await new Promise((res) => setTimeout(res, 1000)); // process start, then the attack at full rate
    const during = await honestLoad(p.a.url, seconds, refusals);
    const report = await attacker;
    await new Promise((res) => setTimeout(res, 1000)); // bans and closes settle
    clearInterval(sampler);
    clearInterval(linkSampler);
    const [bansA, bansB, modeA, modeB, up] = await Promise.all([bansOf(p.a), bansOf(p.b), modeOf(p.a), modeOf(p.b), linked(p)]);
    const honestSubjects = new Set([p.aId, p.bId, '127.0.0.1']);
    const honestBans = [...bansA, ...bansB].filter((s) => honestSubjects.has(s));
    const attackerSubject = isPeer ? byzId : ATTACKER_ADDRESS;
    const attackerBanned = dialled ? 'n/a (never proved an id)' : [bansA.includes(attackerSubject) ? 'A' : '', bansB.includes(attackerSubject) ? 'B' : ''].filter(Boolean).join('+') || 'no';
    const ratio = during.publish.p99 / without.publish.p99;
    const readRatio = during.eose.p99 / without.eose.p99;
    const exited = [p.a, p.b].filter((r) => r.child.exitCode !== null || r.child.signalCode !== null).length;
    const answers = Object.entries(report.answers).sort((x, y) => y[1] - x[1]).slice(0, 3).map(([k, v]) => `${k} ${v}`).join(', ');
    return {
      honest: {
        attack: spec.what,
        'publish→OK p50 w/o / during': pair(without.publish.p50, during.publish.p50),
        'p99 w/o / during': pair(without.publish.p99, during.publish.p99),
        'p99 ratio': `${fmt(ratio, 2)}x${ratio <= 2 ? '' : ' >2x'}`,
        'REQ→EOSE p50 w/o / during': pair(without.eose.p50, during.eose.p50),
        'EOSE p99 w/o / during': pair(without.eose.p99, during.eose.p99),
        'EOSE ratio': `${fmt(readRatio, 2)}x${readRatio <= 2 ? '' : ' >2x'}`,
        'RSS A / B growth MB': `+${fmt(peak.a - rss0.a, 0)} / +${fmt(peak.b - rss0.b, 0)}`,
        'honest bans': honestBans.length,
        'mode A / B': `${modeA} / ${modeB}${exited ? ` (${exited} exited)` : ''}`,
        'A–B link': `${up ? 'up' : 'DOWN'}${link.down ? ` (down in ${link.down}/${link.samples} samples)` : ''}`,
        'honest refused': refusals.size === 0 ? 'none' : JSON.stringify(Object.fromEntries(refusals)),
      },
      attacker: {
        attack: spec.what,
        sent: report.sent,
        auth: report.auth ?? '-',
        'first refusal / cut ms': `${report.firstRefusalMs ?? '-'} / ${report.closedMs !== null ? `${report.closedMs} (${report.closeCode})` : '-'}`,
        'attacker banned': attackerBanned,
        reconnect: report.reconnect,
        'top answers': report.attack === 'conn-flood' ? `opened ${report.opened}, upgrades refused ${JSON.stringify(report.refusedUpgrades)}` : answers,
      },
    };
  } finally {
    await p.cleanup();
    await dialled?.close();
  }
}

// One row per client-side attack: honest publish→OK p99 without and during it (same relay, same run), the relay's
// RSS peak, how soon the attacker was isolated (first refusal, and disconnection if any), and whether any honest
// event was refused or any honest connection cut. The attacker is its own niced process on another loopback
// address (127.0.0.9), so that a ban of its address is not a ban of the honest clients'.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, type RelayChild } from '../lib/relay-child.js';
import { summarize } from '../lib/stats.js';
import { fmt } from '../lib/table.js';
import type { Attack } from './attacker.js';
import { honest } from './honest.js';

const ATTACKS: Array<{ attack: Attack; what: string }> = [
  { attack: 'req-flood', what: 'REQ flood (50-event queries)' },
  { attack: 'close-flood', what: 'CLOSE flood, 100 KB ids' },
  { attack: 'neg-open-flood', what: 'NEG-OPEN flood' },
  { attack: 'event-flood', what: 'valid EVENT flood past the rate limit' },
  { attack: 'forged-flood', what: 'forged-signature EVENT flood' },
];

interface AttackerReport {
  sent: number;
  answers: Record<string, number>;
  firstRefusalMs: number | null;
  closedMs: number | null;
  closeCode: number | null;
}

function runAttacker(url: string, attack: Attack, seconds: number): Promise<AttackerReport> {
  const plan = JSON.stringify({ attack, url, seconds, localAddress: '127.0.0.9' });
  const child = spawn('nice', ['-n', '10', process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bench/byzantine/attacker.ts'), plan], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"type":"report"'));
      if (line) resolve(JSON.parse(line) as AttackerReport);
      else reject(new Error(`attacker ${attack} exited (${code}) without a report: ${err.slice(-1500)}`));
    }),
  );
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

export async function attackRows(relay: (args: string[]) => Promise<RelayChild>, seconds: number): Promise<Array<Record<string, string | number>>> {
  const rows: Array<Record<string, string | number>> = [];
  for (const { attack, what } of ATTACKS) {
    const r = await relay([]);
    await honest(r.url, 2, 20, 1); // warm-up
    const without = summarize((await honest(r.url, 4, 25, seconds)).map((s) => s.ms));
    const rssBefore = rssMb(r.child.pid!);
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(r.child.pid!))), 100);
    const refusals = new Map<string, number>();
    const attacker = runAttacker(r.url, attack, seconds + 2);
    await new Promise((res) => setTimeout(res, 1000)); // process start, then the attack at full rate
    const during = summarize(
      (await honest(r.url, 4, 25, seconds, (m) => refusals.set(m.split(':', 1)[0]!, (refusals.get(m.split(':', 1)[0]!) ?? 0) + 1))).map((s) => s.ms),
    );
    const report = await attacker;
    clearInterval(sampler);
    const ratio = during.p99 / without.p99;
    rows.push({
      attack: what,
      'attacker frames': report.sent,
      'honest p99 without / during ms': `${fmt(without.p99, 1)} / ${fmt(during.p99, 1)}`,
      'ratio (goal <= 2x)': `${fmt(ratio, 2)}x${ratio <= 2 ? '' : ' MISSED'}`,
      'RSS before / peak MB': `${fmt(rssBefore, 0)} / ${fmt(peak, 0)}`,
      'isolated: first refusal / cut ms': `${report.firstRefusalMs ?? '-'} / ${report.closedMs !== null ? `${report.closedMs} (${report.closeCode})` : '-'}`,
      'honest refused / cut': refusals.size === 0 ? 'none' : JSON.stringify(Object.fromEntries(refusals)),
    });
    await r.cleanup();
  }
  return rows;
}

/** The plain-text summary table of one or more experiments (printed by `chaos run` and `make demo`). */
import type { ExperimentResult } from '../experiment/experiment.js';

const s = (ms: number | null) => (ms === null ? '—' : ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : `${(ms / 1000).toFixed(1)}s`);
const vs = (ms: number | null, target: number | null) => (target === null ? (ms === null ? 'n/a' : s(ms)) : `${s(ms)} / <${s(target)}`);

export function summaryRows(results: ExperimentResult[]): string[][] {
  const rows = [['profile', 'acked', 'during fault', 'lost', 'dup', 'unacked stored', 'p50 before/during', 'detection / target', 'recovery / target', 'sync / target', 'faults bit', 'verdict']];
  const ms = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v}`);
  for (const r of results) {
    const during = r.during?.attempted ? `${r.ackedDuringFault}/${r.during.attempted}` : String(r.ackedDuringFault);
    const bit = r.faults === null ? 'n/a' : `${r.faults.filter((f) => !f.problem).length}/${r.faults.length}`;
    rows.push([
      r.profile,
      String(r.acked),
      during,
      String(r.lost),
      String(r.duplicated),
      String(r.storedNotAcked),
      `${ms(r.steady?.p50Ms)}/${ms(r.during?.p50Ms)} ms`,
      r.hypothesis.symptom === null ? 'n/a' : vs(r.detectionMs, r.hypothesis.detectTargetMs),
      vs(r.recoveryMs, r.hypothesis.recoveryTargetMs),
      vs(r.syncMs, r.hypothesis.syncTargetMs),
      bit,
      r.verdict,
    ]);
  }
  return rows;
}

export function formatTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
}

export function verdictLines(r: ExperimentResult): string[] {
  const lines = [`verdict: ${r.verdict} (${r.profile}, exit ${r.exitCode})`];
  for (const v of r.violations) lines.push(`  - ${v}`);
  for (const v of r.inconclusive) lines.push(`  ? ${v}`);
  return lines;
}

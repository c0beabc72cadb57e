/** The plain-text summary table of one or more experiments (printed by `chaos run` and `make demo`). */
import type { ExperimentResult } from '../experiment/experiment.js';

const s = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)}s`);
const vs = (ms: number | null, target: number | null) => (target === null ? (ms === null ? 'n/a' : s(ms)) : `${s(ms)} / <${s(target)}`);

export function summaryRows(results: ExperimentResult[]): string[][] {
  const rows = [['profile', 'acked', 'during fault', 'lost', 'dup', 'detection / target', 'recovery / target', 'sync / target', 'verdict']];
  for (const r of results) {
    rows.push([
      r.profile,
      String(r.acked),
      String(r.ackedDuringFault),
      String(r.lost),
      String(r.duplicated),
      r.expectation.symptom === null ? 'n/a' : vs(r.detectionMs, r.expectation.detectTargetMs),
      vs(r.recoveryMs, r.expectation.recoveryTargetMs),
      vs(r.syncMs, r.expectation.syncTargetMs),
      r.passed ? 'PASS' : 'FAIL',
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
  if (r.passed) return [`verdict: PASS (${r.profile})`];
  return [`verdict: FAIL (${r.profile})`, ...r.violations.map((v) => `  - ${v}`)];
}

/** Turns what an experiment measured into violations. Pure: the tests feed it made-up results too. */
import type { NodeCheck } from './checker.js';

export interface Measured {
  acked: number;
  steadyStateError: string | null;
  checks: NodeCheck[];
  integrity: Array<{ node: string; ok: boolean | null; detail: string }>;
  /** Per node, whether it ended healthy (normal mode, cache ok, peers up). */
  finalHealthy: Array<{ node: string; healthy: boolean; detail: string }>;
  symptomExpected: boolean;
  detectionMs: number | null;
  recoveryMs: number | null;
  syncMs: number | null;
  targets: { detectMs: number | null; recoveryMs: number; syncMs: number };
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function violations(m: Measured): string[] {
  const out: string[] = [];
  if (m.steadyStateError) out.push(`steady state not reached before the fault: ${m.steadyStateError}`);
  if (m.acked === 0) out.push('no event was acknowledged: the workload proved nothing');
  for (const c of m.checks) {
    if (c.missing.length > 0) out.push(`relay-${c.node}: ${c.missing.length} acknowledged event(s) missing (e.g. ${c.missing[0]})`);
    if (c.duplicates.length > 0) out.push(`relay-${c.node}: ${c.duplicates.length} event(s) present more than once (e.g. ${c.duplicates[0]})`);
    if (c.error) out.push(`relay-${c.node}: ${c.error}`);
  }
  for (const i of m.integrity) if (i.ok === false) out.push(`relay-${i.node}: integrity check failed: ${i.detail}`);
  for (const f of m.finalHealthy) if (!f.healthy) out.push(`relay-${f.node} did not return to normal: ${f.detail}`);
  if (m.symptomExpected) {
    if (m.detectionMs === null) out.push('the fault was never detected by any node');
    else if (m.targets.detectMs !== null && m.detectionMs > m.targets.detectMs) out.push(`detection took ${sec(m.detectionMs)} (target < ${sec(m.targets.detectMs)})`);
  }
  if (m.recoveryMs === null) out.push('the nodes did not recover');
  else if (m.recoveryMs > m.targets.recoveryMs) out.push(`recovery took ${sec(m.recoveryMs)} (target < ${sec(m.targets.recoveryMs)})`);
  if (m.syncMs === null) out.push('the nodes did not converge (some acknowledged event never reached every node)');
  else if (m.syncMs > m.targets.syncMs) out.push(`sync took ${sec(m.syncMs)} after heal (target < ${sec(m.targets.syncMs)})`);
  return out;
}

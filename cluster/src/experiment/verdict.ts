/**
 * Turns what an experiment measured into a verdict. Pure: the tests feed it measured values too.
 *
 *   PASS (exit 0)          every check held
 *   FAIL (exit 1)          some check failed: an event lost or divergent, a target missed, availability too low
 *   INCONCLUSIVE (exit 3)  the fault was not proven to have bitten (not installed, never fired), or nothing was
 *                          acknowledged: nothing was tested, so nothing passed
 *   ABORTED (exit 4)       the run was stopped: the steady state did not hold before the fault, an abort bound was
 *                          crossed, or the runner itself failed; every sidecar was reset
 */
import type { ClusterCheck } from './checker.js';
import type { FaultProof } from './fault-proof.js';

export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE' | 'ABORTED';

export const EXIT_CODES: Record<Verdict, number> = { PASS: 0, FAIL: 1, INCONCLUSIVE: 3, ABORTED: 4 };

export interface Measured {
  /** Set when the run was stopped (steady state not met, abort bound, exception). */
  aborted: string | null;
  acked: number;
  /** Publishes due by the rate that the runner itself could not sign in time, of all that were due. */
  runnerBehind: { behind: number; due: number; error: string | null };
  /** null for a crash (proven by the restart instead) */
  faults: FaultProof[] | null;
  faultErrors: string[];
  check: ClusterCheck | null;
  integrity: Array<{ node: string; ok: boolean | null; detail: string }>;
  /** Per node, whether it ended healthy (normal mode, cache ok, peers up). */
  finalHealthy: Array<{ node: string; healthy: boolean; detail: string }>;
  /** Violations found by the `during:` expectations and the readers. */
  during: string[];
  readers: string[];
  symptomExpected: boolean;
  detectionMs: number | null;
  recoveryMs: number | null;
  syncMs: number | null;
  targets: { detectMs: number | null; recoveryMs: number; syncMs: number };
}

export interface Judgement {
  verdict: Verdict;
  violations: string[];
  /** Why the verdict is INCONCLUSIVE (empty otherwise). */
  inconclusive: string[];
}

export const INTEGRITY_UNANSWERED = 'verify-integrity did not answer within 30 s';

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const eg = (ids: string[]) => `(e.g. ${ids[0]})`;

export function violations(m: Measured): string[] {
  const out: string[] = [];
  for (const c of m.check?.nodes ?? []) {
    const n = `relay-${c.node}`;
    if (c.error) out.push(`${n}: ${c.error}`);
    if (c.missing.length > 0) out.push(`${n}: ${c.missing.length} acknowledged event(s) missing ${eg(c.missing)}`);
    if (c.unserved.length > 0) out.push(`${n}: ${c.unserved.length} stored event(s) not served for a REQ by id ${eg(c.unserved)}`);
    if (c.duplicates.length > 0) out.push(`${n}: ${c.duplicates.length} event(s) served more than once for one REQ ${eg(c.duplicates)}`);
    if (c.undeleted.length > 0) out.push(`${n}: ${c.undeleted.length} event(s) still stored after an acknowledged deletion ${eg(c.undeleted)}`);
    for (const s of c.badStreams.slice(0, 3)) out.push(`${n}: replaceable stream ${s}`);
    if (c.foreign.length > 0) out.push(`${n}: ${c.foreign.length} stored event(s) the workload never sent or that fail verification ${eg(c.foreign)}`);
  }
  for (const d of m.check?.divergent ?? []) out.push(`divergence: relay-${d.node} holds ${d.only.length} event(s) another node lacks ${eg(d.only)}`);
  for (const i of m.integrity) if (i.ok === false) out.push(`relay-${i.node}: integrity check failed: ${i.detail}`);
  for (const f of m.finalHealthy) if (!f.healthy) out.push(`relay-${f.node} did not return to normal: ${f.detail}`);
  out.push(...m.during, ...m.readers);
  if (m.symptomExpected) {
    if (m.detectionMs === null) out.push('the fault was never detected by any node');
    else if (m.targets.detectMs !== null && m.detectionMs > m.targets.detectMs) out.push(`detection took ${sec(m.detectionMs)} (target < ${sec(m.targets.detectMs)})`);
  }
  if (m.recoveryMs === null) out.push('the nodes did not recover');
  else if (m.recoveryMs > m.targets.recoveryMs) out.push(`recovery took ${sec(m.recoveryMs)} (target < ${sec(m.targets.recoveryMs)})`);
  if (m.syncMs === null) out.push('the nodes did not sync (some event acknowledged during the fault was never served by every node)');
  else if (m.syncMs > m.targets.syncMs) out.push(`sync took ${sec(m.syncMs)} after heal (target < ${sec(m.targets.syncMs)})`);
  return out;
}

export function judge(m: Measured): Judgement {
  if (m.aborted) return { verdict: 'ABORTED', violations: [`aborted: ${m.aborted}`], inconclusive: [] };
  const inconclusive: string[] = [];
  for (const i of m.integrity) if (i.ok === null && i.detail === INTEGRITY_UNANSWERED) inconclusive.push(`relay-${i.node}: ${INTEGRITY_UNANSWERED}`);
  if (m.acked === 0) inconclusive.push('no event was acknowledged: the workload proved nothing');
  // More than 5 % of the rate missing is the runner's limit, not the relays': the load it claims was not applied.
  const { behind, due, error } = m.runnerBehind;
  if (behind > 0.05 * due) inconclusive.push(`the runner could not sign fast enough: ${behind} of ${due} publishes not sent${error ? ` (${error})` : ''}; lower --rate`);
  if (m.faults !== null) {
    if (m.faults.length === 0) inconclusive.push('the profile placed no fault on any sidecar');
    for (const f of m.faults) if (f.problem) inconclusive.push(`sidecar-${f.node}: fault ${f.fault}: ${f.problem}`);
    for (const e of m.faultErrors) inconclusive.push(`could not read the faults: ${e}`);
  }
  const found = violations(m);
  // A violation found while the fault did not bite still counts: something broke without it.
  if (found.length > 0) return { verdict: 'FAIL', violations: found, inconclusive };
  if (inconclusive.length > 0) return { verdict: 'INCONCLUSIVE', violations: [], inconclusive };
  return { verdict: 'PASS', violations: [], inconclusive: [] };
}

/**
 * The machine-readable journal of one experiment, modelled on the Chaos Toolkit journal: status, deviated, the
 * steady states before/during/after, each activity with start/end/output, the rollbacks, the measurements against
 * their targets, the fault proofs and the verdict with its exit code. Staging CI archives and diffs these.
 */
import type { ExperimentResult } from '../experiment/experiment.js';

export const JOURNAL_FORMAT = 'nostr-chaos-journal/1';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function journalOf(r: ExperimentResult): Record<string, unknown> {
  const before = r.activities.find((a) => a.name.startsWith('steady state before'));
  const after = r.activities.find((a) => a.name.startsWith('steady state after'));
  return {
    format: JOURNAL_FORMAT,
    experiment: { title: r.profile, description: r.description, runbook: r.runbook, nodes: r.nodes, hypothesis: r.hypothesis, rate: r.rate },
    status: r.verdict === 'ABORTED' ? 'aborted' : r.verdict === 'INCONCLUSIVE' ? 'inconclusive' : r.verdict === 'FAIL' ? 'failed' : 'completed',
    verdict: r.verdict,
    exit_code: r.exitCode,
    deviated: r.violations.length > 0,
    start: iso(r.startedAt),
    end: iso(r.endedAt),
    duration: (r.endedAt - r.startedAt) / 1000,
    steady_states: {
      before: before ? { steady_state_met: before.status === 'succeeded', output: before.output ?? before.error } : null,
      during: r.during ? { steady: r.steady, during: r.during, expected: r.hypothesis.during } : null,
      after: after ? { steady_state_met: after.status === 'succeeded' && Array.isArray(after.output) && (after.output as Array<{ healthy: boolean }>).every((h) => h.healthy), output: after.output ?? after.error } : null,
    },
    run: r.activities.filter((a) => a.type !== 'rollback').map((a) => ({ activity: { type: a.type, name: a.name }, status: a.status, start: a.start, end: a.end, duration: a.durationMs / 1000, output: a.output, ...(a.error ? { exception: a.error } : {}) })),
    rollbacks: r.activities.filter((a) => a.type === 'rollback').map((a) => ({ activity: { type: a.type, name: a.name }, status: a.status, start: a.start, end: a.end, output: a.output })),
    measurements: {
      fault_at: iso(r.faultAt),
      heal_at: iso(r.healAt),
      detected_at: iso(r.detectedAt),
      detected_on: r.detectedOn,
      detection_ms: r.detectionMs,
      recovery_ms: r.recoveryMs,
      sync_ms: r.syncMs,
      targets_ms: { detection: r.hypothesis.detectTargetMs, recovery: r.hypothesis.recoveryTargetMs, sync: r.hypothesis.syncTargetMs },
      workload: r.workload,
      acked: r.acked,
      acked_during_fault: r.ackedDuringFault,
      lost: r.lost,
      duplicated: r.duplicated,
      stored_not_acked: r.storedNotAcked,
      readers: r.readers,
    },
    faults: r.faults,
    checks: r.check,
    integrity: r.integrity,
    violations: r.violations,
    inconclusive: r.inconclusive,
    aborted: r.aborted,
  };
}

/**
 * What each experiment expects, in the runbook's terms: which symptom shows the fault was detected, and the targets
 * for detection, recovery (nodes healthy again after heal) and sync (every acknowledged event on every node).
 * Runbook: node crash recovery < 30 s; partition sync < 30 s after heal; DB recovery < 60 s; Redis recovery
 * immediate (we allow 5 s); a dead peer is noticed within the heartbeat timeout (30 s default, 5 s on the local cluster).
 */
import type { Sample } from './observer.js';

export type Symptom = 'degraded' | 'cache-fallback' | 'partition' | 'down' | 'bad-signatures';

export interface Expectation {
  /** The symptom whose first appearance after the fault is the detection time (null: nothing to detect). */
  symptom: Symptom | null;
  detectTargetMs: number | null;
  recoveryTargetMs: number;
  syncTargetMs: number;
  /** The fault lasts this long before the experiment heals it, unless --hold says otherwise. */
  defaultHoldMs: number;
  runbook: string;
}

const SECOND = 1000;

export function expectationFor(profile: string, heartbeatTimeoutSeconds: number): Expectation {
  const peerDetect = (heartbeatTimeoutSeconds + 5) * SECOND;
  switch (profile) {
    case 'crash':
      return { symptom: 'down', detectTargetMs: 5 * SECOND, recoveryTargetMs: 30 * SECOND, syncTargetMs: 30 * SECOND, defaultHoldMs: 0, runbook: 'node crash: restarted and serving < 30 s' };
    case 'db-outage':
      return { symptom: 'degraded', detectTargetMs: 5 * SECOND, recoveryTargetMs: 60 * SECOND, syncTargetMs: 60 * SECOND, defaultHoldMs: 12 * SECOND, runbook: 'database failure: degraded mode at once, recovery < 60 s' };
    case 'redis-outage':
      return { symptom: 'cache-fallback', detectTargetMs: 5 * SECOND, recoveryTargetMs: 5 * SECOND, syncTargetMs: 30 * SECOND, defaultHoldMs: 12 * SECOND, runbook: 'cache failure: fallback mode, recovery immediate (< 5 s)' };
    case 'byzantine':
      return { symptom: 'bad-signatures', detectTargetMs: 10 * SECOND, recoveryTargetMs: 30 * SECOND, syncTargetMs: 30 * SECOND, defaultHoldMs: 12 * SECOND, runbook: 'Byzantine peer: forged events rejected by signature check, sync < 30 s' };
    case 'latency':
    case 'flaky-network':
    case 'bandwidth':
      return { symptom: null, detectTargetMs: null, recoveryTargetMs: 30 * SECOND, syncTargetMs: 30 * SECOND, defaultHoldMs: 12 * SECOND, runbook: 'degraded network: no event lost, sync < 30 s after heal' };
    default:
      if (profile.startsWith('partition')) {
        return { symptom: 'partition', detectTargetMs: peerDetect, recoveryTargetMs: 30 * SECOND, syncTargetMs: 30 * SECOND, defaultHoldMs: Math.max(12, heartbeatTimeoutSeconds + 7) * SECOND, runbook: `partition: detected within heartbeat timeout (${heartbeatTimeoutSeconds} s), sync < 30 s after heal` };
      }
      return { symptom: null, detectTargetMs: null, recoveryTargetMs: 60 * SECOND, syncTargetMs: 60 * SECOND, defaultHoldMs: 12 * SECOND, runbook: 'custom profile: no event lost, recovery < 60 s' };
  }
}

/** Does this sample show the symptom (compared with the node's sample just before the fault)? */
export function showsSymptom(symptom: Symptom, s: Sample, before: Sample | undefined, peerCount: number): boolean {
  switch (symptom) {
    case 'down':
      return !s.up;
    case 'degraded':
      return s.mode !== null && s.mode !== 'normal';
    case 'cache-fallback':
      return s.cache !== null && s.cache !== 'ok';
    case 'partition':
      return s.partitioned === true || (s.peersUp !== null && s.peersUp < peerCount);
    case 'bad-signatures':
      return s.signatureFailures !== null && s.signatureFailures > (before?.signatureFailures ?? 0);
  }
}

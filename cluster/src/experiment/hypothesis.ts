/**
 * The steady-state hypothesis of an experiment (Chaos Toolkit's term), written in the profile's `hypothesis:` block
 * (the sidecar ignores it): which symptom proves the relays detected the fault and how fast, the runbook's recovery
 * and sync targets, what must hold while the fault is on (availability), and when to abort the run.
 *
 *   hypothesis:
 *     runbook: "database failure: degraded mode at once, recovery < 60 s"
 *     hold: 12s                          # the runner heals after this long
 *     detect: { symptom: degraded, within: 5s }
 *     recover_within: 60s                # every node healthy again, from the heal
 *     sync_within: 60s                   # every event acknowledged during the fault served by every node, from the heal
 *     during:                            # judged over the publishes attempted while the fault was on
 *       min_ack_ratio: 0.99              #   share acknowledged (publishes to a deliberately killed node excluded)
 *       each_node_acks: true             #   every node keeps acknowledging (each side of a partition)
 *       min_throughput_ratio: 0.5        #   acks/s vs the steady state measured before the fault, same run
 *       min_latency_rise: 50ms           #   publish→OK p50 must rise at least this much (the fault bit)
 *     abort:                             # the steady-state probe aborts the run (and rolls back) beyond these
 *       node_down_for: 60s               #   a node not answering /health this long
 *       max_error_ratio: 0.9             #   share of publishes failing over the last `window`
 *       window: 5s
 *
 * `within` may be written `heartbeat + 5s`: the relays' heartbeat timeout plus a margin.
 */
import { parseDurationMs } from '../../../sidecar/dist/units.js';

export type Symptom = 'degraded' | 'cache-fallback' | 'partition' | 'down' | 'bad-signatures';
const SYMPTOMS: Symptom[] = ['degraded', 'cache-fallback', 'partition', 'down', 'bad-signatures'];

export interface DuringFault {
  minAckRatio?: number;
  eachNodeAcks?: boolean;
  minThroughputRatio?: number;
  minLatencyRiseMs?: number;
}

export interface AbortBounds {
  nodeDownForMs: number;
  maxErrorRatio: number;
  windowMs: number;
}

export interface Hypothesis {
  runbook: string;
  holdMs: number;
  /** null: the fault has no symptom the relays report (a degraded network); detection is not judged. */
  symptom: Symptom | null;
  detectTargetMs: number | null;
  recoveryTargetMs: number;
  syncTargetMs: number;
  during: DuringFault;
  abort: AbortBounds;
}

export class HypothesisError extends Error {
  override name = 'HypothesisError';
}

const SECOND = 1000;
const DEFAULT_ABORT: AbortBounds = { nodeDownForMs: 90 * SECOND, maxErrorRatio: 1, windowMs: 5 * SECOND };

/** What a profile without a `hypothesis:` block is held to: nothing lost, recovery and sync within a minute. */
export function defaultHypothesis(): Hypothesis {
  return {
    runbook: 'custom profile: no acknowledged event lost, recovery and sync < 60 s',
    holdMs: 12 * SECOND,
    symptom: null,
    detectTargetMs: null,
    recoveryTargetMs: 60 * SECOND,
    syncTargetMs: 60 * SECOND,
    during: {},
    abort: { ...DEFAULT_ABORT },
  };
}

/** The crash experiment has no profile file: SIGKILL a relay, the supervisor restarts it (runbook: < 30 s). */
export function crashHypothesis(): Hypothesis {
  return {
    runbook: 'node crash: restarted and serving < 30 s; the other nodes keep accepting',
    holdMs: 0,
    symptom: 'down',
    detectTargetMs: 5 * SECOND,
    recoveryTargetMs: 30 * SECOND,
    syncTargetMs: 30 * SECOND,
    during: { minAckRatio: 0.99 },
    abort: { ...DEFAULT_ABORT },
  };
}

type Raw = Record<string, unknown>;

function object(path: string, v: unknown, keys: string[]): Raw {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HypothesisError(`${path}: expected a mapping`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw new HypothesisError(`${path}.${k}: unknown key (known: ${keys.join(', ')})`);
  return v as Raw;
}

function duration(path: string, v: unknown, heartbeatMs: number): number {
  try {
    if (typeof v === 'string') {
      const m = /^heartbeat\s*(?:\+\s*(.+))?$/.exec(v.trim());
      if (m) return heartbeatMs + (m[1] ? parseDurationMs(m[1]) : 0);
    }
    return parseDurationMs(v);
  } catch (err) {
    throw new HypothesisError(`${path}: ${(err as Error).message}`);
  }
}

function ratio(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new HypothesisError(`${path}: expected a number from 0 to 1`);
  return v;
}

function positive(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new HypothesisError(`${path}: expected a number above 0`);
  return v;
}

/** Reads a profile's `hypothesis:` block (undefined: the defaults), validated: unknown keys and bad values are errors. */
export function parseHypothesis(raw: unknown, heartbeatTimeoutSeconds: number): Hypothesis {
  const h = defaultHypothesis();
  if (raw === undefined || raw === null) return h;
  const hb = heartbeatTimeoutSeconds * SECOND;
  const doc = object('hypothesis', raw, ['runbook', 'hold', 'detect', 'recover_within', 'sync_within', 'during', 'abort']);
  if (doc.runbook !== undefined) {
    if (typeof doc.runbook !== 'string') throw new HypothesisError('hypothesis.runbook: expected a string');
    h.runbook = doc.runbook;
  }
  if (doc.hold !== undefined) h.holdMs = duration('hypothesis.hold', doc.hold, hb);
  if (doc.detect !== undefined) {
    const d = object('hypothesis.detect', doc.detect, ['symptom', 'within']);
    if (d.symptom !== 'none' && !SYMPTOMS.includes(d.symptom as Symptom)) throw new HypothesisError(`hypothesis.detect.symptom: expected one of none, ${SYMPTOMS.join(', ')}`);
    h.symptom = d.symptom === 'none' ? null : (d.symptom as Symptom);
    h.detectTargetMs = d.within === undefined || h.symptom === null ? null : duration('hypothesis.detect.within', d.within, hb);
  }
  if (doc.recover_within !== undefined) h.recoveryTargetMs = duration('hypothesis.recover_within', doc.recover_within, hb);
  if (doc.sync_within !== undefined) h.syncTargetMs = duration('hypothesis.sync_within', doc.sync_within, hb);
  if (doc.during !== undefined) {
    const d = object('hypothesis.during', doc.during, ['min_ack_ratio', 'each_node_acks', 'min_throughput_ratio', 'min_latency_rise']);
    if (d.min_ack_ratio !== undefined) h.during.minAckRatio = ratio('hypothesis.during.min_ack_ratio', d.min_ack_ratio);
    if (d.each_node_acks !== undefined) {
      if (typeof d.each_node_acks !== 'boolean') throw new HypothesisError('hypothesis.during.each_node_acks: expected true or false');
      h.during.eachNodeAcks = d.each_node_acks;
    }
    if (d.min_throughput_ratio !== undefined) h.during.minThroughputRatio = positive('hypothesis.during.min_throughput_ratio', d.min_throughput_ratio);
    if (d.min_latency_rise !== undefined) h.during.minLatencyRiseMs = duration('hypothesis.during.min_latency_rise', d.min_latency_rise, hb);
  }
  if (doc.abort !== undefined) {
    const a = object('hypothesis.abort', doc.abort, ['node_down_for', 'max_error_ratio', 'window']);
    if (a.node_down_for !== undefined) h.abort.nodeDownForMs = duration('hypothesis.abort.node_down_for', a.node_down_for, hb);
    if (a.max_error_ratio !== undefined) h.abort.maxErrorRatio = ratio('hypothesis.abort.max_error_ratio', a.max_error_ratio);
    if (a.window !== undefined) h.abort.windowMs = duration('hypothesis.abort.window', a.window, hb);
  }
  return h;
}

/**
 * Detection and recovery times from the observer's samples, taken from the relays' own transition times.
 *
 * Detection: the earliest moment, at or after the fault, some node reported entering the symptom's state (storage
 * modeSince for degraded, cache since for cache-fallback, gossip partitionedSince or a peer link's downSince for a
 * partition); where a relay cannot report it (its own crash) or reports no time, the time of the first sample that
 * shows it. Recovery: per node, the moment it was last back to healthy (the latest of its return transitions), the
 * cluster's being the latest node's; null if some node never was healthy again.
 */
import type { Symptom } from './hypothesis.js';
import { isHealthy, type Sample } from './observer.js';

/** Relay clocks and ours are the same machine's; a transition stamped slightly before the fault is the fault's. */
const CLOCK_SLACK_MS = 50;

function symptomTime(symptom: Symptom, s: Sample, before: Sample | undefined, peerCount: number, faultAt: number): number | null {
  const stamped = (t: number | null) => (t !== null && t >= faultAt - CLOCK_SLACK_MS ? Math.max(t, faultAt) : s.t);
  switch (symptom) {
    case 'down':
      return s.up ? (s.startedAt !== null && s.startedAt > faultAt ? s.startedAt : null) : s.t;
    case 'degraded':
      return s.mode !== null && s.mode !== 'normal' ? stamped(s.modeSince) : null;
    case 'cache-fallback':
      return s.cache !== null && s.cache !== 'ok' ? stamped(s.cacheSince) : null;
    case 'partition': {
      if (s.partitioned !== true && !(s.peersUp !== null && s.peersUp < peerCount)) return null;
      const times = [s.partitionedSince, s.peerDownSince].filter((t): t is number => t !== null && t >= faultAt - CLOCK_SLACK_MS);
      return times.length > 0 ? Math.max(faultAt, Math.min(...times)) : s.t;
    }
    case 'bad-signatures':
      return s.signatureFailures !== null && s.signatureFailures > (before?.signatureFailures ?? 0) ? s.t : null;
  }
}

export interface Detection {
  at: number;
  node: string;
}

/** The first detection of the symptom by any node between the fault and `until`. */
export function detect(symptom: Symptom, samples: Sample[], before: Map<string, Sample | undefined>, peerCount: number, faultAt: number, until: number): Detection | null {
  let best: Detection | null = null;
  for (const s of samples) {
    if (s.t < faultAt || s.t > until) continue;
    const at = symptomTime(symptom, s, before.get(s.node), peerCount, faultAt);
    if (at !== null && (best === null || at < best.at)) best = { at, node: s.node };
  }
  return best;
}

/**
 * When a node came back, given its first healthy sample and the unhealthy one before it (if any): the latest of
 * its return transitions, if that falls after the last unhealthy sample (else something without a timestamp, such
 * as gossip, was still unhealthy then, and the healthy sample's own time is the honest answer).
 */
function backAt(s: Sample, lastUnhealthyAt: number, from: number): number {
  const returns = [s.modeSince, s.cacheSince, s.peerUpSince, s.startedAt].filter((t): t is number => t !== null && t >= from && t <= s.t);
  if (returns.length === 0) return s.t;
  const latest = Math.max(...returns);
  return latest < lastUnhealthyAt ? s.t : latest;
}

/**
 * Recovery of every node after `from` (the heal, or the kill): per node, the first sample from which it stayed
 * healthy to the end, stamped with the relay's own return time. Null if some node is not healthy at the end.
 * Samples from before `from` count: a node still degraded at the heal is unhealthy until it reports otherwise.
 */
export function recoveredAt(nodes: string[], samples: Sample[], peerCount: number, from: number): { at: number | null; perNode: Record<string, number | null> } {
  const perNode: Record<string, number | null> = {};
  for (const node of nodes) {
    const own = samples.filter((s) => s.node === node).sort((a, b) => a.t - b.t);
    let firstOfRun: Sample | null = null;
    let lastUnhealthyAt: number | null = null;
    for (const s of own) {
      if (!isHealthy(s, peerCount)) {
        firstOfRun = null;
        lastUnhealthyAt = s.t;
      } else {
        firstOfRun ??= s;
      }
    }
    if (!firstOfRun) perNode[node] = null;
    // Healthy since before `from` (never affected, or back before the heal): recovered at `from`.
    else if (lastUnhealthyAt === null || firstOfRun.t <= from) perNode[node] = from;
    else perNode[node] = Math.max(from, backAt(firstOfRun, lastUnhealthyAt, from));
  }
  const values = Object.values(perNode);
  return { at: values.some((v) => v === null) ? null : Math.max(from, ...(values as number[])), perNode };
}

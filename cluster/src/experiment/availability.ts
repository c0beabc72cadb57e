/**
 * What the clients saw: publish→OK latency and throughput in the steady state before the fault and while it was on,
 * and the hypothesis' `during:` expectations judged against them (both measured in the same run).
 */
import type { DuringFault } from './hypothesis.js';
import type { Attempt } from './workload.js';

export interface WindowStats {
  from: number;
  to: number;
  attempted: number;
  acked: number;
  ackRatio: number | null;
  acksPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  ackedPerNode: Record<string, number>;
  attemptedPerNode: Record<string, number>;
}

export function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Publishes attempted in [from, to] and what came of them. */
export function windowStats(attempts: Attempt[], from: number, to: number, nodes: string[]): WindowStats {
  const inside = attempts.filter((a) => a.at >= from && a.at <= to);
  const acked = inside.filter((a) => a.outcome === 'acked');
  const latencies = acked.map((a) => a.doneAt! - a.at).sort((x, y) => x - y);
  const perNode = (list: Attempt[]) => Object.fromEntries(nodes.map((n) => [n, list.filter((a) => a.node === n).length]));
  const seconds = Math.max(0.001, (to - from) / 1000);
  return {
    from,
    to,
    attempted: inside.length,
    acked: acked.length,
    ackRatio: inside.length === 0 ? null : acked.length / inside.length,
    acksPerSecond: acked.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    ackedPerNode: perNode(acked),
    attemptedPerNode: perNode(inside),
  };
}

const pct = (r: number) => `${(r * 100).toFixed(1)} %`;

/** Violations of the `during:` expectations; `nodes` are the nodes the workload kept publishing to. */
export function judgeDuring(expect: DuringFault, steady: WindowStats, during: WindowStats, nodes: string[]): string[] {
  const out: string[] = [];
  if (Object.keys(expect).length > 0 && during.attempted === 0) return ['no publish was attempted while the fault was on: availability cannot be judged'];
  if (expect.minAckRatio !== undefined && during.ackRatio !== null && during.ackRatio < expect.minAckRatio) {
    out.push(`availability: ${pct(during.ackRatio)} of ${during.attempted} publishes acknowledged during the fault (expected >= ${pct(expect.minAckRatio)})`);
  }
  if (expect.eachNodeAcks) {
    for (const n of nodes) {
      if ((during.attemptedPerNode[n] ?? 0) > 0 && (during.ackedPerNode[n] ?? 0) === 0) out.push(`availability: relay-${n} acknowledged none of its ${during.attemptedPerNode[n]} publishes during the fault`);
    }
  }
  if (expect.minThroughputRatio !== undefined) {
    if (steady.acksPerSecond <= 0) out.push('throughput: no steady-state throughput measured before the fault');
    else if (during.acksPerSecond < expect.minThroughputRatio * steady.acksPerSecond) {
      out.push(`throughput: ${during.acksPerSecond.toFixed(1)} acks/s during the fault, ${steady.acksPerSecond.toFixed(1)} before (expected >= ${expect.minThroughputRatio}x)`);
    }
  }
  if (expect.minLatencyRiseMs !== undefined) {
    if (steady.p50Ms === null || during.p50Ms === null) out.push('latency: publish->OK p50 not measured before and during the fault');
    else if (during.p50Ms - steady.p50Ms < expect.minLatencyRiseMs) {
      out.push(`latency: publish->OK p50 rose by ${(during.p50Ms - steady.p50Ms).toFixed(0)} ms (${steady.p50Ms} -> ${during.p50Ms} ms), expected >= ${expect.minLatencyRiseMs} ms: the fault did not bite`);
    }
  }
  return out;
}

/** publish→OK p50/p99 per time bucket, for the report's latency chart. */
export function latencySeries(attempts: Attempt[], bucketMs: number): Array<{ t: number; p50: number; p99: number; n: number }> {
  const buckets = new Map<number, number[]>();
  for (const a of attempts) {
    if (a.outcome !== 'acked') continue;
    const b = Math.floor(a.at / bucketMs) * bucketMs;
    const list = buckets.get(b) ?? [];
    list.push(a.doneAt! - a.at);
    buckets.set(b, list);
  }
  return [...buckets.entries()].sort((x, y) => x[0] - y[0]).map(([t, list]) => {
    list.sort((x, y) => x - y);
    return { t, p50: quantile(list, 0.5)!, p99: quantile(list, 0.99)!, n: list.length };
  });
}

/**
 * `chaos run PROFILE`: steady state → workload and readers → fault (proven by the sidecars' fired counters) → heal →
 * recovery and sync measured from the relays' own transition times → convergence checked both ways → verdict
 * (verdict.ts). A guard aborts the run when the system deviates beyond the hypothesis' abort bounds; whatever
 * happens, every sidecar is reset, the workload, readers and observer stop, and a result (and so a report) exists.
 */
import { randomBytes } from 'node:crypto';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { applyToCluster, crashRelay, describeApply, loadProfileSource, resetCluster, type NodeApply } from '../chaos/apply.js';
import { partitionProfileYaml, planPartition, type Shape, type ShapeOptions } from '../chaos/shapes.js';
import { sleep } from '../infra/exec.js';
import { tryGet } from '../http.js';
import { directEndpoints, type ClusterLayout } from '../layout.js';
import { readProcesses } from '../state.js';
import { judgeDuring, latencySeries, windowStats, type WindowStats } from './availability.js';
import { checkCluster, converged, expectedState, requiredAmong, storedIds, type CheckTarget, type ClusterCheck } from './checker.js';
import { FaultWatch, type FaultProof } from './fault-proof.js';
import { Aborted, Guard } from './guard.js';
import { crashHypothesis, parseHypothesis, type Hypothesis } from './hypothesis.js';
import { Activities, type Activity } from './activities.js';
import { isHealthy, Observer, sampleNode, type Sample } from './observer.js';
import { coveredBy, Readers } from './readers.js';
import { ServedClient, unserved } from './served.js';
import { detect, recoveredAt as recoveryOf } from './times.js';
import { EXIT_CODES, INTEGRITY_UNANSWERED, judge, type Measured, type Verdict } from './verdict.js';
import { Workload, type Ack, type WorkloadStats } from './workload.js';

export interface ExperimentOptions {
  layout: ClusterLayout;
  /** A chaos-profiles/ name or file, `crash`, or `partition` with a shape. */
  profile: string;
  shape?: Shape;
  shapeOptions?: ShapeOptions;
  /** Sidecars to apply the profile to (default all); for crash, the relay to kill (default the first). */
  nodes?: string[];
  holdMs?: number;
  warmupMs?: number;
  cooldownMs?: number;
  /** Events per second across the cluster (default 200). */
  rate?: number;
  /** Size of a regular note, bytes (default 700). */
  eventBytes?: number;
  say?: (line: string) => void;
  /** Aborting it (Ctrl-C) stops the run like an abort bound: rollback, report, verdict ABORTED. */
  signal?: AbortSignal;
  /** Runs after convergence, right before the final check (tests use it to break things behind the relays' backs). */
  beforeFinalCheck?: (ctx: { acks: Ack[]; targets: CheckTarget[]; deletionTargets: Set<string> }) => Promise<void>;
}

export interface Marker {
  t: number;
  label: string;
}

export interface ExperimentResult {
  profile: string;
  description: string;
  runbook: string;
  hypothesis: Hypothesis;
  nodes: string[];
  startedAt: number;
  endedAt: number;
  faultAt: number;
  healAt: number;
  recoveredAt: number | null;
  convergedAt: number | null;
  syncedAt: number | null;
  detectedAt: number | null;
  detectedOn: string | null;
  actions: string[];
  activities: Activity[];
  workload: WorkloadStats;
  rate: number;
  acked: number;
  /** Acknowledged among the publishes attempted while the fault was on (for a crash: until every node was healthy). */
  ackedDuringFault: number;
  steady: WindowStats | null;
  during: WindowStats | null;
  lost: number;
  duplicated: number;
  storedNotAcked: number;
  detectionMs: number | null;
  recoveryMs: number | null;
  syncMs: number | null;
  faults: FaultProof[] | null;
  check: ClusterCheck | null;
  readers: Array<{ node: string; required: number; missed: number; seen: number }>;
  integrity: Measured['integrity'];
  samples: Sample[];
  acks: Array<{ t: number; node: string }>;
  latency: Array<{ t: number; p50: number; p99: number; n: number }>;
  markers: Marker[];
  verdict: Verdict;
  exitCode: number;
  violations: string[];
  inconclusive: string[];
  aborted: string | null;
  passed: boolean;
}

const RECOVERY_WAIT_MS = 90_000;
const SYNC_POLL_MS = 100;

async function allHealthy(layout: ClusterLayout): Promise<Array<{ node: string; healthy: boolean; detail: string }>> {
  const peers = layout.nodes.length - 1;
  const samples = await Promise.all(layout.nodes.map((n) => sampleNode({ name: n.name, adminUrl: directEndpoints(layout, n).adminUrl }, 3000)));
  return samples.map((s) => ({
    node: s.node,
    healthy: isHealthy(s, peers),
    detail: `health ${s.up ? 'ok' : 'down'}, mode ${s.mode}, cache ${s.cache}, partitioned ${s.partitioned}, peers up ${s.peersUp ?? '?'}/${peers}`,
  }));
}

/** Publishes one event to the first node and waits until every node serves it: the cluster replicates. */
async function probeReplication(layout: ClusterLayout, targets: CheckTarget[], timeoutMs: number): Promise<string | null> {
  const event = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['t', 'chaos-probe']], content: `probe ${Date.now()}` }, generateSecretKey());
  const url = directEndpoints(layout, layout.nodes[0]!).relayUrl;
  const refused = await new Promise<string | null>((resolveOk) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => (ws.terminate(), resolveOk('probe event got no OK within 10 s')), 10_000);
    ws.on('open', () => ws.send(JSON.stringify(['EVENT', event])));
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as unknown[];
      if (m[0] === 'OK' && m[1] === event.id) {
        clearTimeout(timer);
        ws.close();
        resolveOk(m[2] === true ? null : `probe event refused: ${String(m[3])}`);
      }
    });
    ws.on('error', (err) => (clearTimeout(timer), resolveOk(`cannot publish the probe event: ${err.message}`)));
  });
  if (refused) return refused;
  const clients = targets.map((t) => new ServedClient(t.relayUrl));
  const missing = new Map(targets.map((t) => [t.name, new Set([event.id])]));
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      await unserved(clients, targets.map((t) => t.name), missing).catch(() => undefined);
      if ([...missing.values()].every((m) => m.size === 0)) return null;
      await sleep(250);
    }
  } finally {
    for (const c of clients) c.close();
  }
  return `a probe event published to relay-${layout.nodes[0]!.name} was not served by every node within ${timeoutMs / 1000} s`;
}

async function integrityOf(layout: ClusterLayout): Promise<Measured['integrity']> {
  return Promise.all(layout.nodes.map(async (n) => {
    // A random sample of 5,000: a full scan re-verifies every signature ever stored and outgrew 30 s on a demo
    // cluster's ~100k events; every event the workload sent is checked by id and signature by the checker anyway.
    const res = await tryGet<Record<string, unknown>>(`${directEndpoints(layout, n).adminUrl}/admin/events/verify-integrity?sample=5000`, 30_000);
    // Not answered is not checked: INCONCLUSIVE, not a pass and not proof of corruption either.
    if (!res) return { node: n.name, ok: null, detail: INTEGRITY_UNANSWERED };
    if (res.status === 404) return { node: n.name, ok: null, detail: 'endpoint not available' };
    const b = res.body;
    return { node: n.name, ok: res.status === 200 && b?.ok === true, detail: JSON.stringify(b) };
  }));
}

/** The profile's name, fault YAML and hypothesis. */
function resolveProfile(o: ExperimentOptions): { name: string; description: string; yaml: string | null; hypothesis: Hypothesis } {
  const hb = o.layout.heartbeatTimeoutSeconds;
  if (o.profile === 'crash') return { name: 'crash', description: 'SIGKILL a relay; the supervisor restarts it', yaml: null, hypothesis: crashHypothesis() };
  const base = loadProfileSource(o.layout.root, o.shape ? 'partition' : o.profile);
  const hypothesis = parseHypothesis(base.hypothesis, hb);
  if (!o.shape) return { name: base.name, description: base.description, yaml: base.yaml, hypothesis };
  const plan = planPartition(o.shape, o.layout.nodes.map((n) => n.name), o.shapeOptions);
  return { name: `partition-${o.shape}`, description: plan.description, yaml: partitionProfileYaml(plan), hypothesis };
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const say = o.say ?? (() => undefined);
  const layout = o.layout;
  const profile = resolveProfile(o);
  const hypothesis = profile.hypothesis;
  const holdMs = o.holdMs ?? hypothesis.holdMs;
  const rate = o.rate ?? 200;
  const names = layout.nodes.map((n) => n.name);
  const targets: CheckTarget[] = layout.nodes.map((n) => {
    const d = directEndpoints(layout, n);
    return { name: n.name, databaseUrl: d.databaseUrl, relayUrl: d.relayUrl };
  });
  const peers = layout.nodes.length - 1;
  const startedAt = Date.now();
  const markers: Marker[] = [];
  const actions: string[] = [];
  const activities = new Activities();
  const mark = (label: string) => {
    markers.push({ t: Date.now(), label });
    say(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${label}`);
  };

  const observer = new Observer(layout.nodes.map((n) => ({ name: n.name, adminUrl: directEndpoints(layout, n).adminUrl })));
  const tag = `chaos-${profile.name}-${randomBytes(4).toString('hex')}`;
  const workload = new Workload({ nodes: targets.map((t) => ({ name: t.name, relayUrl: t.relayUrl })), rate, tag, eventBytes: o.eventBytes });
  const readers = new Readers(targets.map((t) => ({ name: t.name, relayUrl: t.relayUrl })), workload.pubkeys, Math.floor(startedAt / 1000) - 5);
  const victim = profile.name === 'crash' ? o.nodes?.[0] ?? names[0]! : null;
  const excused = new Set<string>();
  const guard = new Guard(hypothesis.abort, observer, names, () => workload.attempts, () => excused);
  const watch = new FaultWatch(layout.nodes.filter((n) => !o.nodes?.length || victim !== null || o.nodes.includes(n.name)).map((n) => ({ node: n.name, url: directEndpoints(layout, n).sidecarUrl })));

  const onSignal = () => guard.abort('interrupted (signal)');
  o.signal?.addEventListener('abort', onSignal, { once: true });
  let aborted: string | null = null;
  let applied: NodeApply[] = [];
  let faultAt = 0;
  let healAt = 0;
  let windowEnd = 0;
  let steady: WindowStats | null = null;
  let during: WindowStats | null = null;
  let faults: FaultProof[] | null = null;
  let syncedAt: number | null = null;
  let convergedAt: number | null = null;
  let recovery: { at: number | null; perNode: Record<string, number | null> } = { at: null, perNode: {} };
  let check: ClusterCheck | null = null;
  let integrity: Measured['integrity'] = [];
  let finalHealthy: Array<{ node: string; healthy: boolean; detail: string }> = [];
  let restartsBefore = 0;
  let workloadAt = 0;
  const beforeFault = new Map<string, Sample | undefined>();

  try {
    // Steady state: a clean slate, every node healthy, the cluster replicating. No experiment on a system that is
    // not in its steady state: the verdict would say nothing about the fault.
    await activities.run('probe', 'steady state before: every node healthy, replication works', async () => {
      await resetCluster(layout);
      const deadline = Date.now() + 30_000;
      let health = await allHealthy(layout);
      while (health.some((h) => !h.healthy) && Date.now() < deadline) {
        await sleep(250);
        health = await allHealthy(layout);
      }
      const unhealthy = health.filter((h) => !h.healthy).map((h) => `relay-${h.node}: ${h.detail}`);
      if (unhealthy.length > 0) throw new Aborted(`steady state not met before the fault: ${unhealthy.join('; ')}`);
      const replication = await probeReplication(layout, targets, 30_000);
      if (replication) throw new Aborted(`steady state not met before the fault: ${replication}`);
      return { healthy: health.map((h) => h.node) };
    });
    mark('steady state: every node healthy, replication works');

    observer.start();
    guard.start();
    await activities.run('action', 'start readers and workload', async () => {
      readers.start();
      await readers.ready(10_000);
      await workload.start();
      return { rate, tag, authors: workload.pubkeys.length };
    });
    mark(`workload started: ${rate} events/s (notes, replaceable and addressable updates, deletions) round-robin over ${targets.length} relays, a live reader on each (tag ${tag})`);
    workloadAt = Date.now();
    await guard.wait(o.warmupMs ?? 5000);

    for (const n of names) beforeFault.set(n, observer.latest(n));
    faultAt = Date.now();
    if (victim !== null) {
      restartsBefore = readProcesses(layout.dir).find((p) => p.name === `relay-${victim}`)?.restarts ?? 0;
      await activities.run('action', `SIGKILL relay-${victim}`, async () => {
        workload.skip(victim);
        excused.add(victim);
        faultAt = Date.now();
        const killed = crashRelay(layout, victim);
        actions.push(`SIGKILL ${killed.name} (pid ${killed.pid}); the supervisor restarts it`);
        return killed;
      });
      mark(`fault: ${actions[0]}`);
      healAt = faultAt;
      // The fault lasts until every node is healthy again.
      const deadline = Date.now() + RECOVERY_WAIT_MS;
      // Seen down first (a sample taken before the kill landed would look healthy), then healthy again.
      const back = () => detect('down', observer.samples, new Map(), peers, faultAt, Date.now()) !== null && recoveryOf(names, observer.samples, peers, faultAt).at !== null;
      while (Date.now() < deadline && !back()) await guard.wait(SYNC_POLL_MS);
      windowEnd = Date.now();
      workload.unskip(victim);
      excused.delete(victim);
    } else {
      await watch.baseline();
      await activities.run('action', `apply profile ${profile.name}`, async () => {
        faultAt = Date.now();
        applied = await applyToCluster(layout, profile.yaml!, o.nodes);
        watch.start();
        actions.push(`applied profile ${profile.name} to ${applied.map((a) => `sidecar-${a.node}`).join(', ')}`, ...describeApply(applied).map((l) => l.trim()));
        return applied;
      });
      mark(`fault: ${actions[0]}`);
      if (holdMs > 0) await guard.wait(holdMs);
      await watch.stop();
      faults = watch.prove(applied);
      await activities.run('action', 'heal: POST /reset on every sidecar', async () => {
        await resetCluster(layout);
        healAt = Date.now();
        return { healed: names };
      });
      windowEnd = healAt;
      actions.push('healed: POST /reset on every sidecar');
      mark(`heal: every sidecar reset after ${(holdMs / 1000).toFixed(1)} s`);
    }

    // Sync: from the heal until every event acknowledged during the fault is served by every node.
    const expectedNow = expectedState(workload.attempts);
    const duringIds = requiredAmong(expectedNow, workload.acks.filter((a) => a.sentAt >= faultAt && a.sentAt <= windowEnd).map((a) => a.id));
    await activities.run('probe', 'sync: every event acknowledged during the fault served by every node', async () => {
      const clients = targets.map((t) => new ServedClient(t.relayUrl));
      const missing = new Map(names.map((n) => [n, new Set(duringIds)]));
      const deadline = Date.now() + Math.max(60_000, hypothesis.syncTargetMs * 2);
      try {
        while (Date.now() < deadline) {
          // A note deleted after the heal (the workload goes on) is rightly no longer served: not waited for.
          for (const a of workload.attempts) if (a.published.deletes) for (const m of missing.values()) m.delete(a.published.deletes);
          try {
            await unserved(clients, names, missing);
          } catch {
            // A relay briefly unreachable (the outage being healed) is asked again next round.
          }
          if ([...missing.values()].every((m) => m.size === 0)) {
            syncedAt = Date.now();
            break;
          }
          await guard.wait(SYNC_POLL_MS);
        }
      } finally {
        for (const c of clients) c.close();
      }
      return { events: duringIds.length, unserved: Object.fromEntries([...missing].map(([n, m]) => [n, m.size])) };
    });
    mark(syncedAt ? `synced: the ${duringIds.length} events acknowledged during the fault are served by every node` : 'NOT synced');

    await activities.run('probe', 'recovery: every node healthy again', async () => {
      const deadline = Date.now() + RECOVERY_WAIT_MS;
      while (Date.now() < deadline && (recovery = recoveryOf(names, observer.samples, peers, healAt)).at === null) await guard.wait(250);
      return recovery;
    });
    mark(recovery.at ? 'every node healthy again' : `nodes still not healthy ${RECOVERY_WAIT_MS / 1000} s after heal`);
    await guard.wait(o.cooldownMs ?? 3000);
  } catch (err) {
    aborted = err instanceof Aborted ? err.message : `the runner failed: ${(err as Error).stack ?? String(err)}`;
    mark(`ABORTED: ${aborted.split('\n')[0]}`);
  } finally {
    // Rollback, whatever happened: no fault outlives the run, nothing keeps publishing.
    guard.stop();
    await watch.stop().catch(() => undefined);
    if (victim === null || aborted) {
      await activities.run('rollback', 'reset every sidecar', async () => ({ reset: await resetCluster(layout) })).catch(() => undefined);
    }
    await workload.stop();
    // Readers stay subscribed through the convergence wait (a live delivery may trail its OK); stopped below.
    if (aborted) readers.stop();
    const behind = workload.stats.behind > 0 ? ` (${workload.stats.behind} not sent: the runner could not sign fast enough${workload.signerError ? `; ${workload.signerError}` : ''})` : '';
    mark(`workload stopped: ${workload.stats.acked} acknowledged of ${workload.stats.sent} sent${behind}`);
  }

  // Availability once every OK is in (the workload drained): publishes attempted before and during the fault.
  if (faultAt > 0 && windowEnd > 0) {
    steady = windowStats(workload.attempts, workloadAt + 1000, faultAt, names);
    during = windowStats(workload.attempts, faultAt, windowEnd, names);
  }
  const expected = expectedState(workload.attempts);
  const readerProblems: string[] = [];
  const readerViews: ExperimentResult['readers'] = [];
  if (!aborted) {
    // Convergence in both directions: wait until every node stores the same set, then check everything.
    await activities.run('probe', 'converged: every node stores the same events, everything acknowledged', async () => {
      const deadline = Date.now() + Math.max(60_000, hypothesis.syncTargetMs * 2);
      while (Date.now() < deadline) {
        try {
          if (converged(await storedIds(targets, workload.pubkeys), expected)) {
            convergedAt = Date.now();
            break;
          }
        } catch {
          // A database briefly unreachable is retried until the deadline.
        }
        await sleep(250);
      }
      return { converged: convergedAt !== null };
    });
    mark(convergedAt ? 'converged: every node stores the same events' : 'NOT converged');
    if (o.beforeFinalCheck) {
      const deletionTargets = new Set(workload.attempts.flatMap((a) => (a.published.deletes ? [a.published.deletes] : [])));
      await o.beforeFinalCheck({ acks: workload.acks, targets, deletionTargets });
    }
    check = await activities.run('probe', 'final check: stored and served, both directions', () => checkCluster(targets, expected, workload.pubkeys));
    integrity = await activities.run('probe', 'integrity: every node verifies its stored events', () => integrityOf(layout));
    finalHealthy = await activities.run('probe', 'steady state after: every node healthy', () => allHealthy(layout));
    readers.stop();
    for (const v of readers.views()) {
      // Required: what this node acknowledged while its reader was subscribed from before the send to well after the OK.
      const required = workload.acks.filter((a) => a.node === v.node && coveredBy(v.windows, a.sentAt, a.ackAt + 2000));
      const missed = required.filter((a) => !v.seen.has(a.id));
      readerViews.push({ node: v.node, required: required.length, missed: missed.length, seen: v.seen.size });
      if (missed.length > 0) readerProblems.push(`readers: relay-${v.node}'s live subscriber never received ${missed.length} of the ${required.length} events relay-${v.node} acknowledged while it was subscribed (e.g. ${missed[0]!.id})`);
    }
    mark('final checks done');
  }
  await observer.stop();
  o.signal?.removeEventListener('abort', onSignal);

  const detection = hypothesis.symptom && faultAt > 0 ? detect(hypothesis.symptom, observer.samples, beforeFault, peers, faultAt, recovery.at ?? Date.now()) : null;
  const duringProblems = steady && during ? judgeDuring(hypothesis.during, steady, during, names.filter((n) => n !== victim)) : [];
  if (victim !== null && !aborted) {
    const restartsAfter = readProcesses(layout.dir).find((p) => p.name === `relay-${victim}`)?.restarts ?? 0;
    faults = [{ node: victim, fault: 'SIGKILL', type: 'crash', links: [], installed: true, fired: restartsAfter - restartsBefore, problem: restartsAfter > restartsBefore ? null : 'the relay was not restarted: the kill did not land' }];
  }
  const measured: Measured = {
    aborted,
    acked: workload.acks.length,
    runnerBehind: { behind: workload.stats.behind, due: workload.stats.behind + workload.stats.sent + workload.stats.unsent, error: workload.signerError },
    faults,
    faultErrors: watch.errors,
    check,
    integrity,
    finalHealthy,
    during: duringProblems,
    readers: readerProblems,
    symptomExpected: hypothesis.symptom !== null,
    detectionMs: detection ? detection.at - faultAt : null,
    recoveryMs: recovery.at === null ? null : Math.max(0, recovery.at - healAt),
    syncMs: syncedAt === null ? null : Math.max(0, syncedAt - healAt),
    targets: { detectMs: hypothesis.detectTargetMs, recoveryMs: hypothesis.recoveryTargetMs, syncMs: hypothesis.syncTargetMs },
  };
  const judgement = judge(measured);
  const lost = new Set((check?.nodes ?? []).flatMap((c) => c.missing));
  const duplicated = new Set((check?.nodes ?? []).flatMap((c) => c.duplicates));
  return {
    profile: profile.name,
    description: profile.description,
    runbook: hypothesis.runbook,
    hypothesis,
    nodes: names,
    startedAt,
    endedAt: Date.now(),
    faultAt: faultAt || startedAt,
    healAt: healAt || faultAt || startedAt,
    recoveredAt: recovery.at,
    convergedAt,
    syncedAt,
    detectedAt: detection?.at ?? null,
    detectedOn: detection?.node ?? null,
    actions,
    activities: activities.list,
    workload: workload.stats,
    rate,
    acked: workload.acks.length,
    ackedDuringFault: during?.acked ?? 0,
    steady,
    during,
    lost: lost.size,
    duplicated: duplicated.size,
    storedNotAcked: check?.storedNotAcked ?? 0,
    detectionMs: measured.detectionMs,
    recoveryMs: measured.recoveryMs,
    syncMs: measured.syncMs,
    faults,
    check,
    readers: readerViews,
    integrity,
    samples: observer.samples,
    acks: workload.acks.map((a) => ({ t: a.ackAt, node: a.node })),
    latency: latencySeries(workload.attempts, 500),
    markers,
    verdict: judgement.verdict,
    exitCode: EXIT_CODES[judgement.verdict],
    violations: judgement.violations,
    inconclusive: judgement.inconclusive,
    aborted,
    passed: judgement.verdict === 'PASS',
  };
}

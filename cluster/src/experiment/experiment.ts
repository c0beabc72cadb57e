/**
 * `chaos run PROFILE`: steady state → workload → fault → checks during → heal → checks after → verdict.
 * The verdict fails on any acknowledged event missing or duplicated on any node, on a node not back to normal, and on
 * detection, recovery or sync slower than the runbook's targets.
 */
import { randomBytes } from 'node:crypto';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { applyToCluster, crashRelay, describeApply, loadProfileSource, resetCluster } from '../chaos/apply.js';
import { partitionProfileYaml, planPartition, type Shape, type ShapeOptions } from '../chaos/shapes.js';
import { sleep } from '../infra/exec.js';
import { tryGet } from '../http.js';
import { directEndpoints, type ClusterLayout } from '../layout.js';
import { checkNodes, missingPerNode, type CheckTarget, type NodeCheck } from './checker.js';
import { expectationFor, showsSymptom, type Expectation } from './expectations.js';
import { isHealthy, Observer, sampleNode, type Sample } from './observer.js';
import { violations, type Measured } from './verdict.js';
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
  /** Events per second across the cluster. */
  rate?: number;
  say?: (line: string) => void;
  /** Runs after convergence, right before the final check (tests use it to break things behind the relays' backs). */
  beforeFinalCheck?: (ctx: { acks: Ack[]; targets: CheckTarget[] }) => Promise<void>;
}

export interface Marker {
  t: number;
  label: string;
}

export interface ExperimentResult {
  profile: string;
  description: string;
  runbook: string;
  nodes: string[];
  startedAt: number;
  endedAt: number;
  faultAt: number;
  healAt: number;
  recoveredAt: number | null;
  convergedAt: number | null;
  detectedAt: number | null;
  detectedOn: string | null;
  actions: string[];
  workload: WorkloadStats;
  acked: number;
  /** Acknowledged between fault and heal (for a crash: until every node was healthy again): availability under the fault. */
  ackedDuringFault: number;
  lost: number;
  duplicated: number;
  detectionMs: number | null;
  recoveryMs: number | null;
  syncMs: number | null;
  expectation: Expectation;
  checks: NodeCheck[];
  integrity: Measured['integrity'];
  samples: Sample[];
  acks: Array<{ t: number; node: string }>;
  markers: Marker[];
  violations: string[];
  passed: boolean;
}

const RECOVERY_WAIT_MS = 90_000;

async function allHealthy(layout: ClusterLayout): Promise<{ ok: boolean; detail: Array<{ node: string; healthy: boolean; detail: string }> }> {
  const peers = layout.nodes.length - 1;
  const samples = await Promise.all(layout.nodes.map((n) => sampleNode({ name: n.name, adminUrl: directEndpoints(layout, n).adminUrl })));
  const detail = samples.map((s) => ({
    node: s.node,
    healthy: isHealthy(s, peers),
    detail: `health ${s.up ? 'ok' : 'down'}, mode ${s.mode}, cache ${s.cache}, partitioned ${s.partitioned}, peers up ${s.peersUp ?? '?'}/${peers}`,
  }));
  return { ok: detail.every((d) => d.healthy), detail };
}

/** Waits until every node is healthy; returns the time it happened, or null after timeoutMs. */
async function waitHealthy(layout: ClusterLayout, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await allHealthy(layout)).ok) return Date.now();
    await sleep(250);
  }
  return null;
}

async function waitConverged(targets: CheckTarget[], ids: string[], timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const missing = await missingPerNode(targets, ids);
      if ([...missing.values()].every((m) => m.length === 0)) return Date.now();
    } catch {
      // A database briefly unreachable (the outage being healed) is retried until the deadline.
    }
    await sleep(500);
  }
  return null;
}

/** Publishes one event to the first node and waits until every node stores it: the cluster replicates. */
async function probeReplication(layout: ClusterLayout, targets: CheckTarget[], timeoutMs: number): Promise<string | null> {
  const event = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['t', 'chaos-probe']], content: `probe ${Date.now()}` }, generateSecretKey());
  const url = directEndpoints(layout, layout.nodes[0]!).relayUrl;
  const ok = await new Promise<string | null>((resolveOk) => {
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
  if (ok) return ok;
  const at = await waitConverged(targets, [event.id], timeoutMs);
  return at === null ? `a probe event published to relay-${layout.nodes[0]!.name} did not reach every node within ${timeoutMs / 1000} s` : null;
}

async function integrityOf(layout: ClusterLayout): Promise<Measured['integrity']> {
  return Promise.all(layout.nodes.map(async (n) => {
    const res = await tryGet<Record<string, unknown>>(`${directEndpoints(layout, n).adminUrl}/admin/events/verify-integrity`, 30_000);
    if (!res) return { node: n.name, ok: false, detail: 'verify-integrity did not answer' };
    if (res.status === 404) return { node: n.name, ok: null, detail: 'endpoint not available' };
    const b = res.body;
    const ok = res.status === 200 && b?.ok === true;
    return { node: n.name, ok, detail: JSON.stringify(b) };
  }));
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const say = o.say ?? (() => undefined);
  const layout = o.layout;
  const profileName = o.profile === 'crash' ? 'crash' : o.shape ? `partition-${o.shape}` : loadProfileSource(layout.root, o.profile).name;
  const expectation = expectationFor(profileName, layout.heartbeatTimeoutSeconds);
  const holdMs = o.holdMs ?? expectation.defaultHoldMs;
  const targets: CheckTarget[] = layout.nodes.map((n) => {
    const d = directEndpoints(layout, n);
    return { name: n.name, databaseUrl: d.databaseUrl, relayUrl: d.relayUrl };
  });
  const peers = layout.nodes.length - 1;
  const startedAt = Date.now();
  const markers: Marker[] = [];
  const actions: string[] = [];
  const mark = (label: string) => {
    markers.push({ t: Date.now(), label });
    say(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${label}`);
  };

  // Steady state: a clean slate, every node healthy, the cluster replicating.
  await resetCluster(layout);
  let steadyStateError: string | null = null;
  if ((await waitHealthy(layout, 30_000)) === null) {
    steadyStateError = (await allHealthy(layout)).detail.filter((d) => !d.healthy).map((d) => `relay-${d.node}: ${d.detail}`).join('; ');
  } else {
    steadyStateError = await probeReplication(layout, targets, 30_000);
  }
  mark(steadyStateError ? `steady state NOT reached: ${steadyStateError}` : 'steady state: every node healthy, replication works');
  if (steadyStateError) {
    // No experiment on a system that is not in its steady state: the verdict would say nothing about the fault.
    const now = Date.now();
    return {
      profile: profileName, description: 'not run: steady state not reached', runbook: expectation.runbook, nodes: layout.nodes.map((n) => n.name),
      startedAt, endedAt: now, faultAt: now, healAt: now, recoveredAt: null, convergedAt: null, detectedAt: null, detectedOn: null,
      actions: ['aborted before the fault'], workload: { sent: 0, acked: 0, rejected: 0, timedOut: 0, unsent: 0, rejections: {} },
      acked: 0, ackedDuringFault: 0, lost: 0, duplicated: 0, detectionMs: null, recoveryMs: null, syncMs: null, expectation, checks: [], integrity: [],
      samples: [], acks: [], markers, violations: [`steady state not reached before the fault: ${steadyStateError}`], passed: false,
    };
  }

  const observer = new Observer(layout.nodes.map((n) => ({ name: n.name, adminUrl: directEndpoints(layout, n).adminUrl })));
  const tag = `chaos-${profileName}-${randomBytes(4).toString('hex')}`;
  const workload = new Workload({ nodes: targets.map((t) => ({ name: t.name, relayUrl: t.relayUrl })), rate: o.rate ?? 20, tag });
  observer.start();
  await workload.start();
  mark(`workload started: ${o.rate ?? 20} signed events/s round-robin over ${targets.length} relays (tag ${tag})`);
  await sleep(o.warmupMs ?? 4000);

  const beforeFault = new Map(layout.nodes.map((n) => [n.name, observer.latest(n.name)]));
  const faultAt = Date.now();
  if (profileName === 'crash') {
    const victim = o.nodes?.[0] ?? layout.nodes[0]!.name;
    const killed = crashRelay(layout, victim);
    actions.push(`SIGKILL ${killed.name} (pid ${killed.pid}); the supervisor restarts it`);
  } else {
    const yaml = o.shape ? partitionProfileYaml(planPartition(o.shape, layout.nodes.map((n) => n.name), o.shapeOptions)) : loadProfileSource(layout.root, o.profile).yaml;
    const applied = await applyToCluster(layout, yaml, o.nodes);
    actions.push(`applied profile ${profileName} to ${applied.map((a) => `sidecar-${a.node}`).join(', ')}`, ...describeApply(applied).map((l) => l.trim()));
  }
  mark(`fault: ${actions[0]}`);
  if (holdMs > 0) await sleep(holdMs);

  let healAt = faultAt;
  if (profileName !== 'crash') {
    await resetCluster(layout);
    healAt = Date.now();
    actions.push('healed: POST /reset on every sidecar');
    mark(`heal: every sidecar reset after ${(holdMs / 1000).toFixed(0)} s`);
  }
  const [recoveredAt] = await Promise.all([waitHealthy(layout, RECOVERY_WAIT_MS), sleep(o.cooldownMs ?? 4000)]);
  mark(recoveredAt ? 'every node healthy again' : `nodes still not healthy ${RECOVERY_WAIT_MS / 1000} s after heal`);
  await workload.stop();
  mark(`workload stopped: ${workload.stats.acked} acknowledged of ${workload.stats.sent} sent`);
  const ids = workload.acks.map((a) => a.id);
  const convergedAt = ids.length > 0 ? await waitConverged(targets, ids, Math.max(60_000, expectation.syncTargetMs * 2)) : null;
  mark(convergedAt ? 'converged: every acknowledged event on every node' : 'NOT converged');
  if (o.beforeFinalCheck) await o.beforeFinalCheck({ acks: workload.acks, targets });
  const checks = await checkNodes(targets, ids, tag);
  const integrity = await integrityOf(layout);
  const final = await allHealthy(layout);
  await observer.stop();
  mark('final checks done');

  // Detection: the first sample, after the fault and before recovery, in which some node shows the symptom.
  let detectedAt: number | null = null;
  let detectedOn: string | null = null;
  if (expectation.symptom) {
    const until = recoveredAt ?? Date.now();
    for (const s of observer.samples) {
      if (s.t < faultAt || s.t > until) continue;
      if (showsSymptom(expectation.symptom, s, beforeFault.get(s.node), peers)) {
        detectedAt = s.t;
        detectedOn = s.node;
        break;
      }
    }
  }
  const detectionMs = detectedAt === null ? null : detectedAt - faultAt;
  const recoveryMs = recoveredAt === null ? null : Math.max(0, recoveredAt - healAt);
  const syncMs = convergedAt === null ? null : Math.max(0, convergedAt - healAt);
  const measured: Measured = {
    acked: ids.length,
    steadyStateError,
    checks,
    integrity,
    finalHealthy: final.detail,
    symptomExpected: expectation.symptom !== null,
    detectionMs,
    recoveryMs,
    syncMs,
    targets: { detectMs: expectation.detectTargetMs, recoveryMs: expectation.recoveryTargetMs, syncMs: expectation.syncTargetMs },
  };
  const found = violations(measured);
  const lostIds = new Set(checks.flatMap((c) => c.missing));
  const dupIds = new Set(checks.flatMap((c) => c.duplicates));
  return {
    profile: profileName,
    description: o.profile === 'crash' ? 'SIGKILL a relay; the supervisor restarts it' : o.shape ? planPartition(o.shape, layout.nodes.map((n) => n.name), o.shapeOptions).description : loadProfileSource(layout.root, o.profile).description,
    runbook: expectation.runbook,
    nodes: layout.nodes.map((n) => n.name),
    startedAt,
    endedAt: Date.now(),
    faultAt,
    healAt,
    recoveredAt,
    convergedAt,
    detectedAt,
    detectedOn,
    actions,
    workload: workload.stats,
    acked: ids.length,
    ackedDuringFault: workload.acks.filter((a) => a.ackAt >= faultAt && a.ackAt <= (profileName === 'crash' ? recoveredAt ?? Date.now() : healAt)).length,
    lost: lostIds.size,
    duplicated: dupIds.size,
    detectionMs,
    recoveryMs,
    syncMs,
    expectation,
    checks,
    integrity,
    samples: observer.samples,
    acks: workload.acks.map((a) => ({ t: a.ackAt, node: a.node })),
    markers,
    violations: found,
    passed: found.length === 0,
  };
}

/** Applying chaos to the running cluster through the sidecar APIs, healing it, crashing relays. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseDurationMs } from '../../../sidecar/dist/units.js';
import { directEndpoints, nodeOf, type ClusterLayout, type NodeLayout } from '../layout.js';
import { isAlive, readProcesses } from '../state.js';
import { applyProfileYaml, resetSidecar, type ApplyReport } from './sidecar-client.js';

/** Short names used by the make targets → files in chaos-profiles/. */
export const PROFILE_ALIASES: Record<string, string> = {
  flaky: 'flaky-network',
};

export interface ProfileSource {
  name: string;
  file: string;
  yaml: string;
  description: string;
  /** Longest time the profile's own schedule keeps a fault on (undefined = until cleared or repeating). */
  naturalDurationMs: number | undefined;
  /** The profile's `hypothesis:` block, unparsed (experiment/hypothesis.ts reads it). */
  hypothesis: unknown;
}

const durationMs = (v: unknown) => parseDurationMs(typeof v === 'string' ? v.replace(/^@every\s+/, '') : v);

/** A profile by name (chaos-profiles/NAME.yaml, aliases allowed) or by path. */
export function loadProfileSource(root: string, nameOrFile: string): ProfileSource {
  const byPath = nameOrFile.includes('/') || /\.ya?ml$/.test(nameOrFile);
  const name = PROFILE_ALIASES[nameOrFile] ?? nameOrFile;
  const file = byPath ? resolve(nameOrFile) : join(root, 'chaos-profiles', `${name}.yaml`);
  if (!existsSync(file)) throw new Error(`no profile ${nameOrFile} (${file} missing); profiles: see chaos-profiles/`);
  const yaml = readFileSync(file, 'utf8');
  const doc = (parse(yaml) ?? {}) as { name?: string; description?: string; hypothesis?: unknown; steps?: Array<{ at?: unknown; duration?: unknown; every?: unknown }> };
  let natural: number | undefined;
  if (Array.isArray(doc.steps) && doc.steps.every((s) => s.duration !== undefined && s.every === undefined)) {
    natural = Math.max(...doc.steps.map((s) => durationMs(s.at ?? 0) + durationMs(s.duration)));
  }
  return { name: doc.name ?? basename(file).replace(/\.ya?ml$/, ''), file, yaml, description: doc.description ?? '', naturalDurationMs: natural, hypothesis: doc.hypothesis };
}

export interface NodeApply {
  node: string;
  report: ApplyReport;
}

function targetNodes(layout: ClusterLayout, nodes?: string[]): NodeLayout[] {
  return nodes && nodes.length > 0 ? nodes.map((n) => nodeOf(layout, n)) : layout.nodes;
}

/** Pushes the profile to the chosen sidecars (default all); each keeps the entries meant for its node. */
export async function applyToCluster(layout: ClusterLayout, yaml: string, nodes?: string[]): Promise<NodeApply[]> {
  const targets = targetNodes(layout, nodes);
  return Promise.all(targets.map(async (n) => ({ node: n.name, report: await applyProfileYaml(directEndpoints(layout, n).sidecarUrl, yaml) })));
}

/** Heals everything: every sidecar's profile cleared and faults removed. */
export async function resetCluster(layout: ClusterLayout): Promise<string[]> {
  await Promise.all(layout.nodes.map((n) => resetSidecar(directEndpoints(layout, n).sidecarUrl)));
  return layout.nodes.map((n) => `sidecar-${n.name}`);
}

/** SIGKILL a relay (as a crash would); the supervisor starts it again. */
export function crashRelay(layout: ClusterLayout, node: string): { name: string; pid: number } {
  const n = nodeOf(layout, node);
  const proc = readProcesses(layout.dir).find((p) => p.name === `relay-${n.name}`);
  if (!proc?.pid || !isAlive(proc.pid)) throw new Error(`relay-${n.name} is not running (see \`make status\`)`);
  process.kill(proc.pid, 'SIGKILL');
  return { name: `relay-${n.name}`, pid: proc.pid };
}

export function describeApply(applied: NodeApply[]): string[] {
  const lines: string[] = [];
  for (const { node, report } of applied) {
    const placed = report.targets.map((t) => `${t.fault} on ${t.links.join(',')}`);
    lines.push(`  sidecar-${node}: ${placed.length ? placed.join('; ') : 'nothing for this node'}`);
    for (const s of report.skipped) {
      if (!/^for nodes /.test(s.reason)) lines.push(`    skipped ${s.fault}: ${s.reason}`);
    }
  }
  return lines;
}

/** How to watch a fault's effect and how to heal it, in runbook terms. */
export function watchHints(profile: string, layout: ClusterLayout, node?: string): string[] {
  const n = node ? nodeOf(layout, node) : layout.nodes[0]!;
  const admin = `http://localhost:${n.adminPort}`;
  const logs = `make logs NODE=${n.name}`;
  const common = [`make status`, `curl ${admin}/admin/status`];
  const specific: Record<string, string[]> = {
    partition: [`curl ${admin}/admin/gossip/status`, `curl ${admin}/admin/peers`, `${logs} | grep -E "partition (detected|healed)|peer (up|down)"`],
    'db-outage': [`${logs} | grep -E "database (unavailable|recovered)"`, `curl ${admin}/admin/metrics`],
    'redis-outage': [`${logs} | grep -E "cache (unavailable|recovered)"`],
    latency: [`curl ${admin}/admin/metrics   # publishToOkMs`],
    'flaky-network': [`curl ${admin}/admin/gossip/sync-status`],
    byzantine: [`curl ${admin}/admin/reputation/scores`, `${logs} | grep "signature verification failed"`],
    crash: [`curl ${admin}/health`, `make logs NODE=supervisor | grep restarting`],
  };
  const key = profile.startsWith('partition') ? 'partition' : profile;
  return [...common, ...(specific[key] ?? [])];
}

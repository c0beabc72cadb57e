/** `make up` / `make down` / `make status`: the local cluster's lifecycle. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { relayConfigKeys, writeOperatorShims, writeRelayConfig, writeSidecarConfig } from './configs.js';
import { sleep, waitFor } from './infra/exec.js';
import { freePortSource, portsNeeded } from './infra/ports.js';
import { postgresReady, startPostgres, stopPostgres } from './infra/postgres.js';
import { redisReady, startRedis, stopRedis } from './infra/redis.js';
import { buildLayout, DEFAULT_PORTS, directEndpoints, paths, type ClusterLayout } from './layout.js';
import { isAlive, readProcesses, readState, supervisorPid, writeJsonAtomic, type ClusterState, type ProcessSpec } from './state.js';
import { tryGet } from './http.js';

export interface UpOptions {
  dir: string;
  root: string;
  nodes: number;
  /** Free ephemeral ports instead of the documented fixed ones (tests, several clusters side by side). */
  freePorts?: boolean;
  heartbeatTimeoutSeconds?: number;
  /** Progress lines for the operator. */
  say?: (line: string) => void;
  readyTimeoutMs?: number;
}

const DIST = (root: string) => ({
  relay: join(root, 'relay/dist/main.js'),
  sidecar: join(root, 'sidecar/dist/main.js'),
  supervisor: join(root, 'cluster/dist/supervisor/main.js'),
  cli: join(root, 'cluster/dist/cli/cluster.js'),
});

function processSpecs(layout: ClusterLayout, launches: Map<string, { configFile: string; env: Record<string, string> }>): ProcessSpec[] {
  const p = paths(layout);
  const dist = DIST(layout.root);
  // Extra Node.js flags for every relay and sidecar (`--cpu-prof --cpu-prof-dir=/tmp/prof`, which NODE_OPTIONS refuses).
  const nodeArgs = (process.env.CLUSTER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const specs: ProcessSpec[] = [];
  for (const node of layout.nodes) {
    specs.push({
      name: `sidecar-${node.name}`,
      kind: 'sidecar',
      node: node.name,
      command: process.execPath,
      args: [...nodeArgs, dist.sidecar, 'start', '--config', p.sidecarConfig(node.name), '--api-port', String(node.sidecarApiPort)],
      env: {},
      logFile: p.sidecarLog(node.name),
    });
  }
  for (const node of layout.nodes) {
    const launch = launches.get(node.name)!;
    specs.push({
      name: `relay-${node.name}`,
      kind: 'relay',
      node: node.name,
      command: process.execPath,
      args: [...nodeArgs, dist.relay, 'start', '--config', launch.configFile],
      env: launch.env,
      logFile: p.relayLog(node.name),
    });
  }
  return specs;
}

/** Brings the whole cluster up and waits until every relay and sidecar answers its health check. */
export async function up(o: UpOptions): Promise<ClusterState> {
  const say = o.say ?? (() => undefined);
  const dist = DIST(o.root);
  for (const [what, file] of Object.entries(dist)) {
    if (!existsSync(file)) throw new Error(`${file} is missing (${what}): run \`make build\` first`);
  }
  const running = supervisorPid(o.dir);
  if (running) {
    say(`cluster already up in ${o.dir} (supervisor pid ${running}); \`make down\` first to change its shape`);
    return readState(o.dir);
  }
  const ports = o.freePorts ? await freePortSource(portsNeeded(o.nodes)) : DEFAULT_PORTS;
  const layout = buildLayout({ dir: o.dir, root: o.root, nodes: o.nodes, ports, heartbeatTimeoutSeconds: o.heartbeatTimeoutSeconds });
  const p = paths(layout);
  mkdirSync(p.logs, { recursive: true });

  say(`postgres: private PostgreSQL on ${layout.host}:${layout.postgres.port}, data ${p.pgData}`);
  await startPostgres({ dataDir: p.pgData, logFile: p.pgLog, port: layout.postgres.port, user: layout.postgres.user, databases: layout.nodes.map((n) => n.database) });
  say(`redis:    private Redis on ${layout.host}:${layout.redis.port}`);
  await startRedis({ dir: p.redisDir, pidFile: p.redisPid, logFile: p.redisLog, port: layout.redis.port });

  const known = await relayConfigKeys(layout.root);
  const launches = new Map<string, { configFile: string; env: Record<string, string> }>();
  for (const node of layout.nodes) {
    writeSidecarConfig(layout, node);
    launches.set(node.name, writeRelayConfig(layout, node, known));
  }
  writeOperatorShims(layout, dist.cli);
  const state: ClusterState = { layout, processes: processSpecs(layout, launches), createdAt: new Date().toISOString() };
  writeJsonAtomic(p.state, state);

  const out = openSync(p.supervisorLog, 'a');
  try {
    // Detached: the supervisor outlives `make up`, like a service manager would.
    const child = spawn(process.execPath, [dist.supervisor, '--dir', layout.dir], { detached: true, stdio: ['ignore', out, out] });
    child.unref();
  } finally {
    closeSync(out);
  }
  await waitFor('the supervisor', async () => supervisorPid(layout.dir) !== null, 10_000, 100);
  for (const node of layout.nodes) {
    const d = directEndpoints(layout, node);
    say(`relay-${node.name}: ws ${d.relayUrl}, admin ${d.adminUrl}, sidecar-${node.name} API ${d.sidecarUrl}, db ${node.database}, redis db ${node.redisDb} prefix ${node.redisKeyPrefix}`);
  }
  await waitReady(layout, o.readyTimeoutMs ?? 60_000);
  say('all relays and sidecars answer /health');
  return state;
}

/** Every sidecar API and every relay admin /health answers 200. */
export async function waitReady(layout: ClusterLayout, timeoutMs: number): Promise<void> {
  for (const node of layout.nodes) {
    const d = directEndpoints(layout, node);
    await waitFor(`sidecar-${node.name} API ${d.sidecarUrl}`, async () => (await tryGet(`${d.sidecarUrl}/health`))?.status === 200, timeoutMs);
    await waitFor(`relay-${node.name} ${d.adminUrl}/health`, async () => (await tryGet(`${d.adminUrl}/health`))?.status === 200, timeoutMs);
  }
}

export interface DownOptions {
  dir: string;
  keep?: boolean;
  say?: (line: string) => void;
}

/** Stops the supervisor (which stops relays, then sidecars), PostgreSQL and Redis; removes the folder unless keep. */
export async function down(o: DownOptions): Promise<void> {
  const say = o.say ?? (() => undefined);
  if (!existsSync(paths({ dir: o.dir }).state)) {
    say(`no cluster at ${o.dir}; nothing to stop`);
    return;
  }
  const state = readState(o.dir);
  const p = paths(state.layout);
  const pid = supervisorPid(o.dir);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    await waitFor(`supervisor ${pid} to stop`, async () => !isAlive(pid), 30_000, 100);
    say(`stopped the supervisor (pid ${pid}) and its relays and sidecars`);
  }
  // A supervisor killed from outside leaves its children behind: stop what processes.json still lists.
  for (const proc of readProcesses(o.dir)) {
    if (proc.pid && isAlive(proc.pid)) {
      process.kill(proc.pid, 'SIGKILL');
      say(`killed leftover ${proc.name} (pid ${proc.pid})`);
    }
  }
  await stopPostgres(p.pgData);
  say('stopped PostgreSQL');
  await stopRedis({ dir: p.redisDir, pidFile: p.redisPid, logFile: p.redisLog, port: state.layout.redis.port });
  say('stopped Redis');
  if (!o.keep) {
    await sleep(100);
    rmSync(state.layout.dir, { recursive: true, force: true });
    say(`removed ${state.layout.dir}`);
  }
}

export interface NodeHealth {
  node: string;
  relayPid: number | null;
  relayRestarts: number;
  sidecarPid: number | null;
  health: number | null;
  mode: string | null;
  cache: string | null;
  partitioned: boolean | null;
  peersUp: number | null;
  profile: string | null;
  faults: number | null;
}

export interface ClusterHealth {
  supervisorPid: number | null;
  postgres: boolean;
  redis: boolean;
  nodes: NodeHealth[];
}

export async function health(layout: ClusterLayout): Promise<ClusterHealth> {
  const procs = readProcesses(layout.dir);
  const nodes = await Promise.all(layout.nodes.map(async (node): Promise<NodeHealth> => {
    const d = directEndpoints(layout, node);
    const relay = procs.find((x) => x.name === `relay-${node.name}`);
    const sidecar = procs.find((x) => x.name === `sidecar-${node.name}`);
    const [h, status, gossip, peers, sc, faults] = await Promise.all([
      tryGet(`${d.adminUrl}/health`),
      tryGet<Record<string, unknown>>(`${d.adminUrl}/admin/status`),
      tryGet<Record<string, unknown>>(`${d.adminUrl}/admin/gossip/status`),
      tryGet<unknown>(`${d.adminUrl}/admin/peers`),
      tryGet<{ profile?: { name?: string } | null }>(`${d.sidecarUrl}/status`),
      tryGet<unknown>(`${d.sidecarUrl}/faults`),
    ]);
    return {
      node: node.name,
      relayPid: relay?.pid ?? null,
      relayRestarts: relay?.restarts ?? 0,
      sidecarPid: sidecar?.pid ?? null,
      health: h?.status ?? null,
      mode: typeof status?.body?.mode === 'string' ? status.body.mode : null,
      cache: typeof status?.body?.cache === 'string' ? status.body.cache : null,
      partitioned: gossip?.status === 200 && typeof gossip.body?.partitioned === 'boolean' ? gossip.body.partitioned : null,
      peersUp: peers?.status === 200 ? countPeersUp(peers.body) : null,
      profile: sc?.status === 200 ? sc.body?.profile?.name ?? '-' : null,
      faults: faults?.status === 200 ? countFaults(faults.body) : null,
    };
  }));
  return {
    supervisorPid: supervisorPid(layout.dir),
    postgres: await postgresReady(layout.postgres.port),
    redis: await redisReady(layout.redis.port),
    nodes,
  };
}

/** /admin/peers is a list (or {peers: [...]}) of entries whose state/status/up says whether the peer is up. */
export function peerList(body: unknown): Array<Record<string, unknown>> {
  const list = Array.isArray(body) ? body : Array.isArray((body as { peers?: unknown })?.peers) ? (body as { peers: unknown[] }).peers : [];
  return list.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
}

export function isPeerUp(peer: Record<string, unknown>): boolean {
  if (typeof peer.up === 'boolean') return peer.up;
  if (typeof peer.connected === 'boolean') return peer.connected;
  const s = String(peer.state ?? peer.status ?? '');
  return /^(up|connected|healthy|authenticated|ok)$/i.test(s);
}

function countPeersUp(body: unknown): number {
  return peerList(body).filter(isPeerUp).length;
}

function countFaults(body: unknown): number {
  if (Array.isArray(body)) return body.length;
  const faults = (body as { faults?: unknown })?.faults;
  return Array.isArray(faults) ? faults.length : 0;
}


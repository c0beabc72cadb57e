// A relay network for tests and the benchmark: real relay processes, each dialling its peers through its own
// chaos sidecar (link `peer-<name>` on sidecar-<from>, as in the local cluster), so a partition is a sidecar fault.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { REPO_ROOT, startRelay, type RelayProcess } from './relay-process.js';

export const SIDECAR_MAIN = join(REPO_ROOT, 'sidecar/dist/main.js');

/** Children still running when this process exits (a failed or timed-out test) are killed, not orphaned. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export interface SidecarLinkSpec {
  name: string;
  /** Bound by the sidecar (listen 127.0.0.1:0), read from its ready line. */
  listenPort: number;
  upstream: string;
  protocol: 'tcp' | 'ws';
}

export interface SidecarProcess {
  apiUrl: string;
  child: ChildProcess;
  links: SidecarLinkSpec[];
  /** Cuts a link (`stream` upstream = our relay → peer only, downstream = back, both): new connections refused. */
  partition(link: string, opts?: { stream?: 'upstream' | 'downstream' | 'both'; existing?: 'freeze' | 'reset' }): Promise<void>;
  heal(link: string): Promise<void>;
  /** Points a link at another upstream (Toxiproxy POST /proxies/{name}). */
  setUpstream(link: string, upstream: string): Promise<void>;
  stop(): Promise<void>;
}

async function api(url: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Starts a sidecar whose links and API listen on ephemeral ports (no port races with parallel test files). */
export async function startSidecar(name: string, links: Array<Omit<SidecarLinkSpec, 'listenPort'>>): Promise<SidecarProcess> {
  const dir = mkdtempSync(join(tmpdir(), `sidecar-${name}-`));
  const configFile = join(dir, 'sidecar.yaml');
  writeFileSync(configFile, stringify({ node: name, links: links.map((l) => ({ name: l.name, listen: '127.0.0.1:0', upstream: l.upstream, protocol: l.protocol })) }));
  const child = spawn(process.execPath, [SIDECAR_MAIN, 'start', '--config', configFile, '--api-port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sidecar ${name} not ready in 60 s: ${output.slice(-2000)}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('chaos-sidecar ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar ${name} exited (${code}): ${output.slice(-2000)}`));
    });
  });
  // `chaos-sidecar ready node=x api=http://127.0.0.1:P seed=S links=name=127.0.0.1:P->upstream,...`
  const ready = output.split('\n').find((l) => l.startsWith('chaos-sidecar ready'))!;
  const apiUrl = /api=(\S+)/.exec(ready)![1]!;
  const bound = new Map([...ready.matchAll(/([\w-]+)=[\d.]+:(\d+)->/g)].map((m) => [m[1]!, Number(m[2])]));
  const resolved: SidecarLinkSpec[] = links.map((l) => {
    const port = bound.get(l.name);
    if (!port) throw new Error(`sidecar ${name} did not report link ${l.name}: ${ready}`);
    return { ...l, listenPort: port };
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    apiUrl,
    child,
    links: resolved,
    async partition(link, opts = {}) {
      await api(`${apiUrl}/proxies/${link}/toxics`, 'POST', {
        name: 'partition',
        type: 'partition',
        stream: opts.stream ?? 'both',
        toxicity: 1,
        attributes: { new: 'refuse', existing: opts.existing ?? 'reset' },
      });
    },
    async heal(link) {
      await api(`${apiUrl}/proxies/${link}/toxics/partition`, 'DELETE');
    },
    async setUpstream(link, upstream) {
      await api(`${apiUrl}/proxies/${link}`, 'POST', { upstream });
      const spec = resolved.find((l) => l.name === link);
      if (spec) spec.upstream = upstream;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface NetworkNode {
  name: string;
  relay: RelayProcess;
  sidecar: SidecarProcess;
  relayPort: number;
  adminPort: number;
  /** Restarts a stopped or killed relay on the same ports, database and data dir (same node key). */
  restart(): Promise<void>;
}

export interface NetworkOptions {
  names: string[];
  /** Undirected links; default: full mesh. */
  edges?: Array<[string, string]>;
  /** Extra relay flags for every node. */
  args?: string[];
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** Periodic anti-entropy (0: only when a link comes up); default 5 s. */
  syncIntervalMs?: number;
}

export interface Network {
  nodes: Map<string, NetworkNode>;
  node(name: string): NetworkNode;
  /** Cuts `from`'s peer link to `to` on from's sidecar (from can no longer reach to). */
  cut(from: string, to: string, opts?: { existing?: 'freeze' | 'reset' }): Promise<void>;
  heal(from: string, to: string): Promise<void>;
  stop(): Promise<void>;
}

/** Test-speed peering flags: ~1 s heartbeats and short reconnect backoff. */
export function fastPeeringArgs(intervalMs = 500, timeoutMs = 2500, syncIntervalMs = 5000): string[] {
  return ['--heartbeat-interval-ms', String(intervalMs), '--heartbeat-timeout-ms', String(timeoutMs), '--reconnect-min-ms', '200', '--reconnect-max-ms', '1000', '--sync-interval-ms', String(syncIntervalMs)];
}

/**
 * Starts the network: sidecars first (links on ephemeral ports, upstreams unknown yet), then every relay on
 * ephemeral ports dialling its sidecar's links, then each link is pointed at its relay. Nothing is pre-picked,
 * so parallel test files never race for a port.
 */
export async function startNetwork(options: NetworkOptions): Promise<Network> {
  const { names } = options;
  const edges = options.edges ?? names.flatMap((a, i) => names.slice(i + 1).map((b) => [a, b] as [string, string]));
  const neighbours = (n: string) => edges.flatMap(([a, b]) => (a === n ? [b] : b === n ? [a] : []));
  const nodes = new Map<string, NetworkNode>();
  const sidecars = new Map<string, SidecarProcess>();
  const relays = new Map<string, RelayProcess>();
  // Where every link pointing at `name` lives, to repoint them when that relay starts on a new port.
  const pointAt = async (name: string, port: number) => {
    await Promise.all(names.flatMap((other) => (neighbours(other).includes(name) ? [sidecars.get(other)!.setUpstream(`peer-${name}`, `127.0.0.1:${port}`)] : [])));
  };
  try {
    const started = await Promise.allSettled(names.map(async (name) => {
      sidecars.set(name, await startSidecar(name, neighbours(name).map((peer) => ({ name: `peer-${peer}`, upstream: '127.0.0.1:9', protocol: 'ws' as const }))));
    }));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // One relay at a time: each start has a 30 s deadline, which parallel starts on a busy machine can miss.
    for (const name of names) {
      const sidecar = sidecars.get(name)!;
      const peers = sidecar.links.map((l) => `ws://127.0.0.1:${l.listenPort}`);
      // Every neighbour dials this relay through its own sidecar: those URLs name it (public_url and aliases).
      const namedBy = neighbours(name).map((other) => `ws://127.0.0.1:${sidecars.get(other)!.links.find((l) => l.name === `peer-${name}`)!.listenPort}`);
      const args = [
        ...fastPeeringArgs(options.heartbeatIntervalMs, options.heartbeatTimeoutMs, options.syncIntervalMs),
        ...(peers.length ? ['--peers', peers.join(',')] : []),
        ...(namedBy.length ? ['--public-url', namedBy[0]!, ...(namedBy.length > 1 ? ['--public-url-aliases', namedBy.slice(1).join(',')] : [])] : []),
        '--relay-name', `relay-${name}`,
        ...(options.args ?? []),
      ];
      let relay = await startRelay({ args });
      track(relay.child);
      relays.set(name, relay);
      const node: NetworkNode = {
        name,
        relay,
        sidecar,
        relayPort: relay.port,
        adminPort: relay.adminPort,
        async restart() {
          await relay.kill();
          relay = await startRelay({ args, databaseUrl: relay.databaseUrl, redisUrl: relay.redisUrl, redisKeyPrefix: relay.redisKeyPrefix, dataDir: relay.dataDir });
          track(relay.child);
          node.relay = relay;
          node.relayPort = relay.port;
          node.adminPort = relay.adminPort;
          await pointAt(name, relay.port);
        },
      };
      nodes.set(name, node);
    }
    for (const name of names) await pointAt(name, relays.get(name)!.port);
  } catch (err) {
    for (const r of relays.values()) {
      await r.kill();
      await r.cleanup().catch(() => undefined);
    }
    for (const sc of sidecars.values()) await sc.stop();
    throw err;
  }
  const original = [...relays.values()];
  return {
    nodes,
    node: (name) => nodes.get(name) ?? (() => { throw new Error(`no node ${name}`); })(),
    cut: (from, to, opts) => nodes.get(from)!.sidecar.partition(`peer-${to}`, { stream: 'both', existing: opts?.existing ?? 'reset' }),
    heal: (from, to) => nodes.get(from)!.sidecar.heal(`peer-${to}`),
    async stop() {
      await Promise.all([...nodes.values()].map((n) => n.relay.stop()));
      await Promise.all([...nodes.values()].map((n) => n.sidecar.stop()));
      // Restarted relays share the first process's database and data dir: clean up through the original handles.
      for (const r of original) await r.cleanup();
    },
  };
}

/** Polls until `check` returns a truthy value; throws with the last value after the timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Ids stored in a relay's PostgreSQL database, sorted, and how many ids appear twice. NIP-70 protected events
 * are left out: they stay on the relay their author published to, so they are never part of the shared set.
 */
export async function storedIds(relay: RelayProcess): Promise<{ ids: string[]; duplicates: number }> {
  const client = new pg.Client({ connectionString: relay.databaseUrl });
  await client.connect();
  try {
    const ids = (await client.query<{ id: string }>(`SELECT id FROM events WHERE NOT (tags @> '[["-"]]'::jsonb) ORDER BY id`)).rows.map((r) => r.id);
    const dup = await client.query<{ n: string }>('SELECT count(*) AS n FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) d');
    return { ids, duplicates: Number(dup.rows[0]!.n) };
  } finally {
    await client.end();
  }
}

export interface PeerEntry {
  nodeId: string | null;
  url: string;
  state: string;
  rttMs: number | null;
  lastHeard: string | null;
  queueDepth: number;
}

export async function peersOf(relay: RelayProcess): Promise<PeerEntry[]> {
  return (await relay.admin<{ peers: PeerEntry[] }>('/admin/peers')).body.peers;
}

export async function gossipOf(relay: RelayProcess) {
  return (await relay.admin<{ partitioned: boolean; reachable: string[]; unreachable: Array<{ nodeId: string | null; url: string | null }>; members: unknown[] }>('/admin/gossip/status')).body;
}

/** Runs a negentropy round with every peer now; returns the differences each found. */
export async function syncNow(relay: RelayProcess) {
  const res = await relay.admin<{ peers: Array<{ peer: string; lastDifferences: { need: number; have: number } | null; lastError: string | null; lastFetched: number; lastPushed: number }> }>('/admin/gossip/sync', { method: 'POST' });
  if (res.status !== 200) throw new Error(`sync failed: ${JSON.stringify(res.body)}`);
  return res.body.peers;
}

export async function nodeIdOf(relay: RelayProcess): Promise<string> {
  return (await relay.admin<{ nodeId: string }>('/admin/status')).body.nodeId;
}

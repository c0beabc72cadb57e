/**
 * The local cluster's shape: which processes exist, on which ports, with which files. Everything else
 * (the supervisor, the chaos commands, experiments) reads this one description from `<dir>/cluster.json`.
 */
import { resolve } from 'node:path';

export const NODE_NAMES = ['a', 'b', 'c', 'd', 'e'] as const;

export interface LinkLayout {
  /** Link name on the node's sidecar: `postgres`, `redis` or `peer-<node>`. */
  name: string;
  protocol: 'tcp' | 'ws';
  /** The sidecar listens here (the relay is configured to dial it)... */
  listenPort: number;
  /** ...and forwards to this address. */
  upstream: string;
}

export interface NodeLayout {
  name: string;
  /** Client WebSocket port of the relay (clients connect here directly, not through the sidecar). */
  relayPort: number;
  adminPort: number;
  sidecarApiPort: number;
  /** PostgreSQL database of this node in the private PostgreSQL. */
  database: string;
  /** Redis logical database and key prefix of this node in the private Redis. */
  redisDb: number;
  redisKeyPrefix: string;
  links: LinkLayout[];
}

export interface ClusterLayout {
  /** Absolute path of the cluster folder (data, logs, configs, state). */
  dir: string;
  /** Repository root: where relay/dist, sidecar/dist and chaos-profiles live. */
  root: string;
  host: string;
  postgres: { port: number; user: string };
  redis: { port: number };
  /** Seconds without a peer heartbeat before the peer counts as down (runbook default 30 s; shorter locally). */
  heartbeatTimeoutSeconds: number;
  nodes: NodeLayout[];
}

export interface PortPlan {
  relayBase: number;
  adminBase: number;
  sidecarApiBase: number;
  postgres: number;
  redis: number;
  /** Sidecar link ports: linkBase + 100 * node index + slot (0 postgres, 1 redis, 10 + peer index). */
  linkBase: number;
}

/** The documented defaults: relay-a 7001/8080 behind sidecar-a 8474, relay-b 7002/8081 behind sidecar-b 8475. */
export const DEFAULT_PORTS: PortPlan = {
  relayBase: 7001,
  adminBase: 8080,
  sidecarApiBase: 8474,
  postgres: 15432,
  redis: 16379,
  linkBase: 17000,
};

export interface LayoutOptions {
  dir: string;
  root: string;
  nodes: number;
  /** Fixed plan, or a function handing out one port per call (tests use free ephemeral ports). */
  ports: PortPlan | (() => number);
  heartbeatTimeoutSeconds?: number;
}

export function buildLayout(options: LayoutOptions): ClusterLayout {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > NODE_NAMES.length) {
    throw new Error(`nodes must be a whole number from 1 to ${NODE_NAMES.length} (got ${options.nodes})`);
  }
  const names = NODE_NAMES.slice(0, options.nodes);
  const plan = options.ports;
  const port = (fixed: (p: PortPlan) => number) => (typeof plan === 'function' ? plan() : fixed(plan));
  const host = '127.0.0.1';
  const pgPort = port((p) => p.postgres);
  const redisPort = port((p) => p.redis);
  const bare = names.map((name, i) => ({
    name,
    relayPort: port((p) => p.relayBase + i),
    adminPort: port((p) => p.adminBase + i),
    sidecarApiPort: port((p) => p.sidecarApiBase + i),
    database: `relay_${name}`,
    // Logical databases keep nodes apart even for tools that ignore the prefix; the prefix keeps them apart on a shared Redis.
    redisDb: i,
    redisKeyPrefix: `${name}:`,
  }));
  const nodes: NodeLayout[] = bare.map((node, i) => {
    const links: LinkLayout[] = [
      { name: 'postgres', protocol: 'tcp', listenPort: port((p) => p.linkBase + 100 * i), upstream: `${host}:${pgPort}` },
      { name: 'redis', protocol: 'tcp', listenPort: port((p) => p.linkBase + 100 * i + 1), upstream: `${host}:${redisPort}` },
    ];
    bare.forEach((peer, j) => {
      if (j === i) return;
      links.push({ name: `peer-${peer.name}`, protocol: 'ws', listenPort: port((p) => p.linkBase + 100 * i + 10 + j), upstream: `${host}:${peer.relayPort}` });
    });
    return { ...node, links };
  });
  return {
    dir: resolve(options.dir),
    root: resolve(options.root),
    host,
    postgres: { port: pgPort, user: 'nostream' },
    redis: { port: redisPort },
    heartbeatTimeoutSeconds: options.heartbeatTimeoutSeconds ?? 5,
    nodes,
  };
}

export function linkOf(node: NodeLayout, name: string): LinkLayout {
  const link = node.links.find((l) => l.name === name);
  if (!link) throw new Error(`node ${node.name} has no link ${name}`);
  return link;
}

export function nodeOf(layout: ClusterLayout, name: string): NodeLayout {
  const wanted = name.replace(/^relay-/, '');
  const node = layout.nodes.find((n) => n.name === wanted);
  if (!node) throw new Error(`no node ${name} in the cluster (nodes: ${layout.nodes.map((n) => n.name).join(', ')})`);
  return node;
}

/** What the relay dials: its database, cache and peers, all through its own sidecar. */
export function relayEndpoints(layout: ClusterLayout, node: NodeLayout) {
  const h = layout.host;
  return {
    databaseUrl: `postgres://${layout.postgres.user}@${h}:${linkOf(node, 'postgres').listenPort}/${node.database}`,
    redisUrl: `redis://${h}:${linkOf(node, 'redis').listenPort}/${node.redisDb}`,
    peers: node.links.filter((l) => l.name.startsWith('peer-')).map((l) => `ws://${h}:${l.listenPort}`),
  };
}

/** Direct URLs that bypass the sidecar: what the experiment checker and the operator use to look at the truth. */
export function directEndpoints(layout: ClusterLayout, node: NodeLayout) {
  const h = layout.host;
  return {
    relayUrl: `ws://${h}:${node.relayPort}`,
    adminUrl: `http://${h}:${node.adminPort}`,
    sidecarUrl: `http://${h}:${node.sidecarApiPort}`,
    databaseUrl: `postgres://${layout.postgres.user}@${h}:${layout.postgres.port}/${node.database}`,
    redisUrl: `redis://${h}:${layout.redis.port}/${node.redisDb}`,
  };
}

export const paths = (layout: { dir: string }) => ({
  state: resolve(layout.dir, 'cluster.json'),
  pgData: resolve(layout.dir, 'postgres'),
  pgLog: resolve(layout.dir, 'logs', 'postgres.log'),
  redisDir: resolve(layout.dir, 'redis'),
  redisLog: resolve(layout.dir, 'logs', 'redis.log'),
  redisPid: resolve(layout.dir, 'redis', 'redis.pid'),
  logs: resolve(layout.dir, 'logs'),
  bin: resolve(layout.dir, 'bin'),
  envFile: resolve(layout.dir, 'env.sh'),
  supervisorPid: resolve(layout.dir, 'supervisor.pid'),
  supervisorState: resolve(layout.dir, 'processes.json'),
  supervisorLog: resolve(layout.dir, 'logs', 'supervisor.log'),
  nodeDir: (node: string) => resolve(layout.dir, 'nodes', node),
  relayConfig: (node: string) => resolve(layout.dir, 'nodes', node, 'config.yaml'),
  sidecarConfig: (node: string) => resolve(layout.dir, 'nodes', node, 'sidecar.yaml'),
  relayData: (node: string) => resolve(layout.dir, 'nodes', node, 'data'),
  relayLog: (node: string) => resolve(layout.dir, 'logs', `relay-${node}.log`),
  sidecarLog: (node: string) => resolve(layout.dir, 'logs', `sidecar-${node}.log`),
});

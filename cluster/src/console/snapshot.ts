/**
 * One picture of the cluster, built from the same endpoints `make status` reads: each relay's admin API
 * (/admin/status, /admin/metrics, /admin/peers, /admin/gossip/status) and each sidecar's API (/status, /faults).
 * Every request has a short deadline and no retry, so a node that is down costs one timeout, not a stalled poll.
 */
import { directEndpoints, type ClusterLayout, type NodeLayout } from '../layout.js';

export interface LinkFault {
  name: string;
  type: string;
  stream: string;
  remainingMs: number | null;
  fired: number;
  source: string | null;
}

export interface LinkView {
  name: string;
  protocol: string;
  enabled: boolean;
  activeConnections: number | null;
  faults: LinkFault[];
  /** Faults fired on this link since the sidecar started, by type (kept after a fault is removed). */
  firedTotals: Record<string, number>;
}

export interface PeerView {
  /** The peer's node name (found by the sidecar port its URL dials), or the URL when it is not one of ours. */
  node: string;
  /** Gossip's view: up, suspect or down. */
  status: string;
  /** The peer link's own state. */
  link: string | null;
  queueDepth: number | null;
}

export interface NodeView {
  node: string;
  relayUp: boolean;
  sidecarUp: boolean;
  mode: string | null;
  cache: string | null;
  partitioned: boolean | null;
  partitionedSince: string | null;
  queueDepth: number | null;
  publishP99Ms: number | null;
  eventsPerSecond: number | null;
  peers: PeerView[];
  profile: string | null;
  links: LinkView[];
}

export interface Snapshot {
  at: string;
  /** Milliseconds the poll took (all nodes in parallel). */
  pollMs: number;
  nodes: NodeView[];
}

const TIMEOUT_MS = 1500;

type Json = Record<string, unknown>;

async function get(url: string): Promise<Json | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.status !== 200) {
      await res.body?.cancel();
      return null;
    }
    const body = (await res.json()) as unknown;
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Json) : null;
  } catch {
    return null;
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : null);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is Json => typeof x === 'object' && x !== null) : []);
const sub = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

/**
 * Peer URLs point at sidecar link ports: the port of some sidecar's `peer-X` link tells the peer is X (gossip also
 * lists members learned from other nodes, under the URL of *their* sidecar link, hence every node's links).
 */
function peerName(layout: ClusterLayout, url: unknown): string {
  const port = typeof url === 'string' ? Number(/:(\d+)\/?$/.exec(url)?.[1]) : NaN;
  for (const n of layout.nodes) {
    const l = n.links.find((x) => x.listenPort === port && x.name.startsWith('peer-'));
    if (l) return l.name.slice(5);
  }
  const direct = layout.nodes.find((n) => n.relayPort === port);
  return direct ? direct.name : String(url ?? '?').slice(0, 80);
}

async function nodeView(layout: ClusterLayout, node: NodeLayout): Promise<NodeView> {
  const d = directEndpoints(layout, node);
  const [status, metrics, peers, gossip, sidecar, faults] = await Promise.all([
    get(`${d.adminUrl}/admin/status`),
    get(`${d.adminUrl}/admin/metrics`),
    get(`${d.adminUrl}/admin/peers`),
    get(`${d.adminUrl}/admin/gossip/status`),
    get(`${d.sidecarUrl}/status`),
    get(`${d.sidecarUrl}/faults`),
  ]);
  const linkStates = new Map(list(peers?.peers).map((p) => [peerName(layout, p.url), p]));
  const peerViews: PeerView[] = list(gossip?.members).map((m) => {
    const name = peerName(layout, m.url);
    const l = linkStates.get(name);
    return { node: name, status: str(m.status) ?? 'unknown', link: str(l?.state), queueDepth: num(l?.queueDepth) };
  });
  const activeFaults = list(faults?.faults);
  const totals = list(faults?.fired_totals);
  const links: LinkView[] = list(sidecar?.links).map((l) => {
    const name = String(l.name);
    const firedTotals: Record<string, number> = {};
    for (const t of totals) if (t.link === name && typeof t.type === 'string') firedTotals[t.type] = num(t.fired) ?? 0;
    return {
      name,
      protocol: str(l.protocol) ?? '?',
      enabled: l.enabled !== false,
      activeConnections: num(l.active_connections),
      faults: activeFaults.filter((f) => f.link === name).map((f) => ({
        name: String(f.name), type: String(f.type), stream: String(f.stream), remainingMs: num(f.remaining_ms), fired: num(f.fired) ?? 0, source: str(f.source),
      })),
      firedTotals,
    };
  });
  const storage = sub(status?.storage);
  return {
    node: node.name,
    relayUp: status !== null,
    sidecarUp: sidecar !== null,
    mode: str(status?.mode),
    cache: str(status?.cache),
    partitioned: typeof gossip?.partitioned === 'boolean' ? gossip.partitioned : null,
    partitionedSince: str(gossip?.partitionedSince),
    queueDepth: num(storage.queueDepth),
    publishP99Ms: num(sub(metrics?.publishToOkMs).p99),
    eventsPerSecond: num(metrics?.eventsPerSecond),
    peers: peerViews,
    profile: sidecar === null ? null : str(sub(sidecar.profile).name),
    links,
  };
}

export async function takeSnapshot(layout: ClusterLayout): Promise<Snapshot> {
  const started = Date.now();
  const nodes = await Promise.all(layout.nodes.map((n) => nodeView(layout, n)));
  return { at: new Date().toISOString(), pollMs: Date.now() - started, nodes };
}

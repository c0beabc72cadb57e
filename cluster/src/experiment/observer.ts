/**
 * Samples every node's admin API ten times a second during an experiment. Each sample carries the relay's own
 * transition times (storage modeSince, cache since, gossip partitionedSince, peer links' downSince/upSince, process
 * uptime): detection and recovery are read from those, so their resolution is the relay's clock, not the sampling
 * interval; the interval only bounds how soon a transition is noticed.
 */
import { isPeerUp, peerList } from '../cluster.js';

export interface Sample {
  t: number;
  node: string;
  /** /health answered 200. */
  up: boolean;
  /** When this process started (from its uptime), ms; null when down. */
  startedAt: number | null;
  mode: string | null;
  modeSince: number | null;
  replaying: boolean | null;
  queueDepth: number | null;
  cache: string | null;
  cacheSince: number | null;
  partitioned: boolean | null;
  partitionedSince: number | null;
  peersUp: number | null;
  /** The latest time a peer link went down (links down now), and the latest time a link came up (links up now). */
  peerDownSince: number | null;
  peerUpSince: number | null;
  signatureFailures: number | null;
}

export interface ObservedNode {
  name: string;
  adminUrl: string;
}

export const SAMPLE_EVERY_MS = 100;

/** One GET, no retries (a retry would smear the time of the sample), short deadline. */
async function get(url: string, timeoutMs: number): Promise<{ status: number; body: Record<string, unknown> | undefined } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } catch {
    return undefined;
  }
}

const time = (v: unknown): number | null => {
  if (typeof v !== 'string') return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
};

const obj = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined);

export async function sampleNode(n: ObservedNode, timeoutMs = 1000): Promise<Sample> {
  const t = Date.now();
  const [h, status, gossip, peers, metrics] = await Promise.all([
    get(`${n.adminUrl}/health`, timeoutMs),
    get(`${n.adminUrl}/admin/status`, timeoutMs),
    get(`${n.adminUrl}/admin/gossip/status`, timeoutMs),
    get(`${n.adminUrl}/admin/peers`, timeoutMs),
    get(`${n.adminUrl}/admin/metrics`, timeoutMs),
  ]);
  const s = status?.status === 200 ? status.body : undefined;
  const storage = obj(s?.storage);
  const cacheMode = obj(s?.cacheMode);
  const links = peers?.status === 200 ? peerList(peers.body) : null;
  const latest = (values: Array<number | null>) => values.reduce<number | null>((m, v) => (v !== null && (m === null || v > m) ? v : m), null);
  const uptime = typeof h?.body?.uptimeSeconds === 'number' ? h.body.uptimeSeconds : null;
  return {
    t,
    node: n.name,
    up: h?.status === 200,
    startedAt: h?.status === 200 && uptime !== null ? t - uptime * 1000 : null,
    mode: typeof s?.mode === 'string' ? s.mode : null,
    modeSince: time(storage?.modeSince),
    replaying: typeof storage?.replaying === 'boolean' ? storage.replaying : null,
    queueDepth: typeof storage?.queueDepth === 'number' ? storage.queueDepth : null,
    cache: typeof s?.cache === 'string' ? s.cache : null,
    cacheSince: time(cacheMode?.since),
    partitioned: gossip?.status === 200 && typeof gossip.body?.partitioned === 'boolean' ? gossip.body.partitioned : null,
    partitionedSince: gossip?.status === 200 ? time(gossip.body?.partitionedSince) : null,
    peersUp: links ? links.filter(isPeerUp).length : null,
    peerDownSince: links ? latest(links.filter((l) => !isPeerUp(l)).map((l) => time(l.downSince))) : null,
    peerUpSince: links ? latest(links.filter(isPeerUp).map((l) => time(l.upSince))) : null,
    signatureFailures: metrics?.status === 200 && typeof metrics.body?.signatureFailures === 'number' ? metrics.body.signatureFailures : null,
  };
}

/** Healthy as the experiment's steady state demands: serving, normal mode, cache ok, not partitioned, all peers up. */
export function isHealthy(s: Sample, peerCount: number): boolean {
  return s.up && s.mode === 'normal' && s.cache === 'ok' && s.partitioned !== true && (s.peersUp === null || s.peersUp >= peerCount);
}

export class Observer {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly nodes: ObservedNode[]) {}

  /** Each node is sampled on its own: a node that does not answer does not slow the sampling of the others. */
  start(): void {
    const tick = () => {
      for (const n of this.nodes) {
        if (this.inFlight.has(n.name)) continue;
        this.inFlight.set(n.name, sampleNode(n).then((s) => {
          this.samples.push(s);
          this.inFlight.delete(n.name);
        }));
      }
    };
    tick();
    this.timer = setInterval(tick, SAMPLE_EVERY_MS);
  }

  /** Safe to call twice. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.inFlight.values());
  }

  latest(node: string): Sample | undefined {
    for (let i = this.samples.length - 1; i >= 0; i--) if (this.samples[i]!.node === node) return this.samples[i];
    return undefined;
  }

  /** Samples of one node in time order. */
  of(node: string): Sample[] {
    return this.samples.filter((s) => s.node === node).sort((a, b) => a.t - b.t);
  }
}

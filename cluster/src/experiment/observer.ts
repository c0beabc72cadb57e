/** Samples every node's admin API twice a second during an experiment: the data behind the verdict's times and the timeline. */
import { isPeerUp, peerList } from '../cluster.js';
import { tryGet } from '../http.js';

export interface Sample {
  t: number;
  node: string;
  /** /health answered 200. */
  up: boolean;
  mode: string | null;
  cache: string | null;
  partitioned: boolean | null;
  peersUp: number | null;
  signatureFailures: number | null;
}

export interface ObservedNode {
  name: string;
  adminUrl: string;
}

export const SAMPLE_EVERY_MS = 500;

export async function sampleNode(n: ObservedNode): Promise<Sample> {
  const t = Date.now();
  const [h, status, gossip, peers, metrics] = await Promise.all([
    tryGet(`${n.adminUrl}/health`, 2000),
    tryGet<Record<string, unknown>>(`${n.adminUrl}/admin/status`, 2000),
    tryGet<Record<string, unknown>>(`${n.adminUrl}/admin/gossip/status`, 2000),
    tryGet<unknown>(`${n.adminUrl}/admin/peers`, 2000),
    tryGet<Record<string, unknown>>(`${n.adminUrl}/admin/metrics`, 2000),
  ]);
  const s = status?.status === 200 ? status.body : undefined;
  return {
    t,
    node: n.name,
    up: h?.status === 200,
    mode: typeof s?.mode === 'string' ? s.mode : null,
    cache: typeof s?.cache === 'string' ? s.cache : null,
    partitioned: gossip?.status === 200 && typeof gossip.body?.partitioned === 'boolean' ? gossip.body.partitioned : null,
    peersUp: peers?.status === 200 ? peerList(peers.body).filter(isPeerUp).length : null,
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
  private inFlight: Promise<void> | null = null;

  constructor(private readonly nodes: ObservedNode[]) {}

  start(): void {
    const tick = () => {
      if (this.inFlight) return;
      this.inFlight = Promise.all(this.nodes.map(sampleNode)).then((batch) => {
        this.samples.push(...batch);
        this.inFlight = null;
      });
    };
    tick();
    this.timer = setInterval(tick, SAMPLE_EVERY_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  latest(node: string): Sample | undefined {
    for (let i = this.samples.length - 1; i >= 0; i--) if (this.samples[i]!.node === node) return this.samples[i];
    return undefined;
  }
}

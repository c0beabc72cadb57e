/**
 * The sidecar: its links (Toxiproxy's "proxies"), the active profile and the
 * metrics. The HTTP API and the CLI both drive this object.
 */
import type { Logger } from './logger.js';
import { Link, type LinkContext, type LinkSpec } from './links/link.js';
import { TcpLink } from './links/tcp-link.js';
import { WsLink } from './links/ws-link.js';
import { FaultError } from './faults/index.js';
import { createMetrics } from './metrics.js';
import { ProfileRunner, type ApplyReport } from './profiles/runner.js';
import type { Profile } from './profiles/profile.js';

export interface SidecarOptions {
  node: string;
  seed: number;
  dialTimeoutMs: number;
  profilesDir: string;
  /** Most faults active at once across all links (0 = no limit). */
  maxActiveFaults: number;
  log: Logger;
}

export interface LinkInput {
  name?: unknown;
  listen?: unknown;
  upstream?: unknown;
  enabled?: unknown;
  protocol?: unknown;
}

export const VERSION = '0.1.0';

export class Sidecar {
  readonly links = new Map<string, Link>();
  readonly startedAt = Date.now();
  readonly log: Logger;
  private readonly fired = new Map<string, number>();
  readonly metrics;
  private readonly linkCtx: LinkContext;
  profile: ProfileRunner | null = null;

  constructor(readonly opts: SidecarOptions) {
    this.log = opts.log.child({ component: 'sidecar', node: opts.node });
    this.metrics = createMetrics({ links: () => this.links.values(), firedCounts: () => this.fired });
    this.linkCtx = {
      log: opts.log,
      seed: opts.seed,
      dialTimeoutMs: opts.dialTimeoutMs,
      onFired: (link, type) => {
        const key = `${link}|${type}`;
        this.fired.set(key, (this.fired.get(key) ?? 0) + 1);
      },
      onFaultChange: (action) => this.metrics.faultEvents.inc({ action }),
      checkFaultBudget: () => {
        const max = opts.maxActiveFaults;
        if (max > 0 && this.activeFaultCount() >= max) {
          throw new FaultError(`max_active_faults reached: ${max} faults are active; remove some first`, 409);
        }
      },
    };
  }

  /** Validate a link body (API or config) and fill defaults. */
  static checkLink(input: LinkInput, partial = false): Partial<LinkSpec> {
    if (!input || typeof input !== 'object' || Array.isArray(input)) throw new FaultError('proxy must be a JSON object');
    const out: Partial<LinkSpec> = {};
    for (const key of ['name', 'listen', 'upstream'] as const) {
      const v = input[key];
      if (v === undefined || v === null || v === '') {
        if (!partial) throw new FaultError(`missing required field: ${key}`);
        continue;
      }
      if (typeof v !== 'string') throw new FaultError(`${key} must be a string`);
      out[key] = v;
    }
    if (input.enabled !== undefined) {
      if (typeof input.enabled !== 'boolean') throw new FaultError('enabled must be true or false');
      out.enabled = input.enabled;
    } else if (!partial) out.enabled = true;
    if (input.protocol !== undefined) {
      if (input.protocol !== 'tcp' && input.protocol !== 'ws') throw new FaultError('protocol must be "tcp" or "ws"');
      out.protocol = input.protocol;
    } else if (!partial) out.protocol = 'tcp';
    return out;
  }

  async createLink(input: LinkInput): Promise<Link> {
    const spec = Sidecar.checkLink(input) as LinkSpec;
    if (this.links.has(spec.name)) throw new FaultError(`proxy already exists: ${spec.name}`, 409);
    let link: Link;
    try {
      link = spec.protocol === 'ws'
        ? new WsLink(spec.name, spec.listen, spec.upstream, spec.enabled, this.linkCtx)
        : new TcpLink(spec.name, spec.listen, spec.upstream, spec.enabled, this.linkCtx);
    } catch (err) {
      throw new FaultError((err as Error).message);
    }
    this.links.set(spec.name, link);
    try {
      await link.start();
    } catch (err) {
      this.links.delete(spec.name);
      throw new FaultError(`cannot listen on ${spec.listen}: ${(err as Error).message}`, 409);
    }
    return link;
  }

  getLink(name: string): Link {
    const link = this.links.get(name);
    if (!link) throw new FaultError(`proxy not found: ${name}`, 404);
    return link;
  }

  async updateLink(name: string, input: LinkInput): Promise<Link> {
    const link = this.getLink(name);
    const patch = Sidecar.checkLink(input, true);
    if (patch.protocol && patch.protocol !== link.protocol) throw new FaultError('protocol of an existing proxy cannot change; delete and recreate it');
    try {
      await link.reconfigure(patch);
    } catch (err) {
      throw new FaultError(`cannot apply proxy change: ${(err as Error).message}`, 409);
    }
    return link;
  }

  async deleteLink(name: string): Promise<void> {
    const link = this.getLink(name);
    this.links.delete(name);
    await link.dispose();
  }

  /** Toxiproxy /populate: identical proxies are kept, changed ones replaced, new ones created. */
  async populate(inputs: unknown): Promise<Link[]> {
    if (!Array.isArray(inputs)) throw new FaultError('populate expects a JSON array of proxies');
    const specs = inputs.map((i) => Sidecar.checkLink(i as LinkInput) as LinkSpec);
    const out: Link[] = [];
    for (const spec of specs) {
      const existing = this.links.get(spec.name);
      if (existing) {
        const cur = existing.spec();
        const same = cur.upstream === spec.upstream && cur.protocol === spec.protocol && cur.enabled === spec.enabled &&
          (cur.listen === spec.listen || spec.listen.endsWith(':0'));
        if (same) {
          out.push(existing);
          continue;
        }
        await this.deleteLink(spec.name);
      }
      out.push(await this.createLink(spec as unknown as LinkInput));
    }
    return out;
  }

  /** Toxiproxy /reset, plus our profile: every link enabled, every fault gone. */
  async reset(): Promise<void> {
    this.clearProfile();
    for (const link of this.links.values()) {
      link.removeAllFaults();
      await link.reconfigure({ enabled: true });
    }
  }

  /** Replaces the active profile. A profile that fails its checks leaves the active one alone. */
  applyProfile(profile: Profile): ApplyReport {
    const runner = new ProfileRunner(profile, this);
    runner.check();
    this.clearProfile();
    const report = runner.start();
    this.profile = runner;
    return report;
  }

  clearProfile(): boolean {
    if (!this.profile) return false;
    this.profile.stop();
    this.profile = null;
    return true;
  }

  activeFaultCount(): number {
    let n = 0;
    for (const l of this.links.values()) n += l.faults.size;
    return n;
  }

  faultsView() {
    const now = Date.now();
    const out = [];
    for (const link of this.links.values()) {
      for (const f of link.faults.values()) {
        out.push({
          link: link.name,
          name: f.name,
          type: f.type,
          stream: f.stream,
          toxicity: f.toxicity,
          attributes: f.attributes,
          source: f.source,
          added_at: new Date(f.addedAt).toISOString(),
          remaining_ms: f.expiresAt !== undefined ? Math.max(0, f.expiresAt - now) : null,
          fired: f.fired,
        });
      }
    }
    return out;
  }

  /** Faults fired since start by link and fault type: survives the fault's removal, so a heal cannot hide what bit. */
  firedTotals(): Array<{ link: string; type: string; fired: number }> {
    return [...this.fired].map(([key, fired]) => {
      const [link, type] = key.split('|');
      return { link: link!, type: type!, fired };
    });
  }

  status() {
    return {
      node: this.opts.node,
      version: VERSION,
      seed: this.opts.seed,
      max_active_faults: this.opts.maxActiveFaults,
      active_faults: this.activeFaultCount(),
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      profile: this.profile?.status() ?? null,
      links: [...this.links.values()].map((l) => ({
        ...l.spec(),
        active_connections: l.conns.size,
        connections_total: l.stats.connectionsTotal,
        bytes_upstream: l.stats.bytesUpstream,
        bytes_downstream: l.stats.bytesDownstream,
        dial_failures: l.stats.dialFailures,
        bad_handshakes: l.stats.badHandshakes,
        faults: [...l.faults.keys()],
      })),
    };
  }

  async close(): Promise<void> {
    this.clearProfile();
    for (const link of this.links.values()) await link.dispose();
    this.links.clear();
  }
}

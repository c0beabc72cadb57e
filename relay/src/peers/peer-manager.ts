import type { Logger } from 'pino';
import type { NodeKey } from '../identity/node-key.js';
import { peerUrlError } from '../config/load.js';
import type { IngestResult, IngestSource } from '../ingest/source.js';
import type { PeerAllowList } from '../security/peer-allow-list.js';
import type { AntiEntropy } from './anti-entropy.js';
import type { Forwarder } from './forwarder.js';
import type { Gossip } from './gossip.js';
import type { PeeringMetrics } from './metrics.js';
import { normalizeRelayUrl } from './peer-auth.js';
import { Pacer } from './pacer.js';
import { PeerLink, type PeerLinkOptions, type PeerState } from './peer-link.js';

/** The runbook's alert threshold for a peer queue. */
export const QUEUE_WARN_DEPTH = 1000;

export interface PeerManagerSettings {
  peers: string[];
  discovery: boolean;
  /** Most learned (discovered) links. */
  discoveryMaxLinks: number;
  /** Bulk events per second to one peer (0: unpaced). */
  syncRate: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  queueSize: number;
  syncIntervalMs: number;
  /** Largest frame taken from a relay we dial (bytes; peer-link.ts keeps a floor). */
  maxInboundPayload?: number;
}

export interface PeerManagerDeps {
  settings: PeerManagerSettings;
  nodeKey: NodeKey;
  ourUrl: () => string;
  isBanned: (nodeId: string) => boolean;
  allowList: PeerAllowList;
  verify: (id: string, pubkey: string, sig: string) => Promise<boolean>;
  submitLive: (event: unknown, source: IngestSource) => Promise<IngestResult>;
  logger: Logger;
}

/**
 * The set of outbound peer links (configured seeds plus discovered peers), their lifecycle, and the periodic
 * work that rides on them: gossip every heartbeat interval, anti-entropy on every link up and every sync
 * interval. Bans cut a node's links at once and keep them cut until unbanned.
 */
export class PeerManager {
  readonly links = new Map<string, PeerLink>();
  gossip!: Gossip;
  antiEntropy!: AntiEntropy;
  forwarder!: Forwarder;
  metrics!: PeeringMetrics;
  private timers: NodeJS.Timeout[] = [];
  private readonly warnedQueues = new Set<string>();
  private started = false;
  private readonly log: Logger;

  constructor(private readonly deps: PeerManagerDeps) {
    this.log = deps.logger.child({ component: 'peers' });
    deps.allowList.setUnprovenCounter(() => this.list().filter((l) => l.options.origin === 'configured' && l.remoteNodeId === null).length);
  }

  get allowList(): PeerAllowList {
    return this.deps.allowList;
  }

  list(): PeerLink[] {
    return [...this.links.values()];
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const url of this.deps.settings.peers) this.add(url, 'configured');
    this.log.info({ nodeId: this.deps.nodeKey.nodeId, url: this.deps.ourUrl(), peers: this.deps.settings.peers }, 'peering started');
    const { heartbeatIntervalMs, syncIntervalMs } = this.deps.settings;
    this.every(heartbeatIntervalMs, () => {
      this.gossip.tick();
      this.checkQueues();
    });
    if (syncIntervalMs > 0) {
      this.every(syncIntervalMs, () => {
        for (const link of this.links.values()) if (link.isUp) void this.antiEntropy.sync(link, 'periodic');
      });
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const link of this.links.values()) link.stop('relay stopping');
  }

  /**
   * A node and the URL it announced (gossip, or a proven peer's AUTH `peer` tag), vouched for by `author`: dialled
   * only with discovery on, when the author is an allowed peer, the URL is a plain ws(s) URL, and fewer than
   * `discoveryMaxLinks` links were learned. The dialled node must then prove it is `nodeId`.
   */
  learn(nodeId: string, url: string, author: string): void {
    const s = this.deps.settings;
    if (!s.discovery || !this.started || nodeId === this.deps.nodeKey.nodeId || this.deps.isBanned(nodeId)) return;
    if (!this.deps.allowList.allows(author)) return;
    if (peerUrlError(url)) {
      this.log.debug({ nodeId, url: url.slice(0, 200), author }, 'discovered URL refused');
      return;
    }
    // Until every configured peer has told us its node id we cannot tell a new node from a seed reached through
    // a proxy under another URL: learning now could bypass the proxy (and the partitions it injects).
    const links = this.list();
    if (links.some((l) => l.remoteNodeId === nodeId) || links.some((l) => l.options.origin === 'configured' && l.remoteNodeId === null)) return;
    if (this.links.has(normalizeRelayUrl(url)) || normalizeRelayUrl(url) === normalizeRelayUrl(this.deps.ourUrl())) return;
    if (links.filter((l) => l.options.origin === 'learned').length >= s.discoveryMaxLinks) {
      this.log.debug({ nodeId, url, max: s.discoveryMaxLinks }, 'discovery cap reached; not dialling');
      return;
    }
    this.log.info({ nodeId, url, author }, 'peer discovered');
    this.add(url, 'learned', nodeId);
  }

  /** A fresh reconciliation with every link that is up now (after any running one); waits for the results. */
  async syncAll(reason: string) {
    return Promise.all(this.list().filter((l) => l.isUp).map((l) => this.antiEntropy.syncFresh(l, reason)));
  }

  onBanned(nodeId: string, reason: string): void {
    for (const link of this.links.values()) {
      if (link.remoteNodeId !== nodeId) continue;
      this.log.warn({ nodeId, url: link.url, reason }, 'peer banned; link cut');
      link.ban(reason);
      if (link.options.origin === 'learned') {
        this.links.delete(normalizeRelayUrl(link.url));
        this.antiEntropy.forget(link.url);
      }
    }
    this.gossip.forget(nodeId);
  }

  onUnbanned(nodeId: string): void {
    for (const link of this.links.values()) {
      if (link.remoteNodeId === nodeId && link.state === 'banned') {
        this.log.info({ nodeId, url: link.url }, 'peer unbanned; reconnecting');
        link.unban();
      }
    }
  }

  private add(url: string, origin: 'configured' | 'learned', expectedNodeId?: string): void {
    const key = normalizeRelayUrl(url);
    if (this.links.has(key)) return;
    const s = this.deps.settings;
    const options: PeerLinkOptions = {
      url,
      origin,
      nodeKey: this.deps.nodeKey,
      ourUrl: this.deps.ourUrl,
      heartbeatIntervalMs: s.heartbeatIntervalMs,
      heartbeatTimeoutMs: s.heartbeatTimeoutMs,
      reconnectMinMs: s.reconnectMinMs,
      reconnectMaxMs: s.reconnectMaxMs,
      queueSize: s.queueSize,
      ...(s.maxInboundPayload ? { maxInboundPayload: s.maxInboundPayload } : {}),
      isBanned: this.deps.isBanned,
      verify: this.deps.verify,
      pacer: new Pacer(s.syncRate),
      onProven: (link, nodeId) => this.onProven(link, nodeId, expectedNodeId),
      onProofOutcome: (outcome) => this.metrics?.identityProofs.inc({ outcome }),
      logger: this.log,
      onStateChange: (link, from, to, reason) => this.onStateChange(link, from, to, reason),
      onLiveEvent: (link, event) => this.onLiveEvent(link, event),
    };
    const link = new PeerLink(options);
    this.links.set(key, link);
    link.start();
  }

  /** A third-party peer's live tail: ingested as the peer's; an accepted event may move its catch-up cursor. */
  private onLiveEvent(link: PeerLink, event: unknown): void {
    void this.deps
      .submitLive(event, this.sourceFor(link))
      .then((r) => {
        if (r.ok) this.antiEntropy.noteLive(link, (event as { created_at: number }).created_at);
      })
      .catch((err: unknown) => this.log.debug({ err, peerUrl: link.url }, 'live event from peer not ingested'));
  }

  private onProven(link: PeerLink, nodeId: string, expected: string | undefined): void {
    if (link.options.origin === 'configured') {
      this.deps.allowList.prove(nodeId, link.url);
      return;
    }
    if (expected && expected !== nodeId) {
      // A discovered URL answered with another key: it is not the node we were told about.
      this.log.warn({ peerUrl: link.url, expected, nodeId }, 'discovered peer proved another node id; link dropped');
      link.stop('proved another node id');
      this.links.delete(normalizeRelayUrl(link.url));
    }
  }

  /** Events arriving over our own link are attributed to the node behind it (its URL until we know its id). */
  sourceFor(link: PeerLink): IngestSource {
    return { kind: 'peer', nodeId: link.remoteNodeId ?? link.url, url: link.url };
  }

  private onStateChange(link: PeerLink, from: PeerState, to: PeerState, reason: string): void {
    const fields = { peerUrl: link.url, nodeId: link.remoteNodeId, from, to, reason };
    if (to === 'up' && (from === 'connecting' || from === 'down')) {
      this.log.info({ ...fields, authenticated: link.authenticated, queued: link.queue.depth }, 'peer up');
      this.gossip.tick();
      // Queued events first (cheap, in order), then a reconciliation for whatever the queue could not hold.
      void link
        .drainQueue()
        .then((sent) => {
          if (sent > 0) this.log.info({ peerUrl: link.url, nodeId: link.remoteNodeId, sent }, 'peer queue drained');
        })
        .catch((err: unknown) => this.log.warn({ err, peerUrl: link.url }, 'draining the peer queue failed'))
        .finally(() => {
          if (link.isUp) void this.antiEntropy.sync(link, 'link up');
        });
    } else if (to === 'up') {
      this.log.info(fields, 'peer recovered');
    } else if (to === 'suspect') {
      this.log.warn(fields, 'peer suspect');
    } else if (to === 'down' && (from === 'up' || from === 'suspect')) {
      this.log.warn(fields, 'peer down');
      this.gossip.tick();
    } else if (to === 'banned') {
      this.log.warn(fields, 'peer banned');
    } else {
      this.log.debug(fields, `peer ${to}`);
    }
  }

  private checkQueues(): void {
    for (const link of this.links.values()) {
      const depth = link.queue.depth;
      if (depth > QUEUE_WARN_DEPTH && !this.warnedQueues.has(link.url)) {
        this.warnedQueues.add(link.url);
        this.log.warn({ peerUrl: link.url, nodeId: link.remoteNodeId, depth }, 'peer queue deeper than 1000');
      } else if (depth <= QUEUE_WARN_DEPTH) {
        this.warnedQueues.delete(link.url);
      }
      if (link.queue.dropped > 0) {
        this.metrics.queueOverflows.inc({ peer: link.url });
        this.log.warn({ peerUrl: link.url, dropped: link.queue.dropped }, 'peer queue overflowed; the peer will be reconciled when it returns');
        link.queue.dropped = 0;
      }
    }
  }

  private every(ms: number, fn: () => void): void {
    const timer = setInterval(() => {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, 'periodic peering task failed');
      }
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }
}

import type { Logger } from 'pino';
import type { NodeKey } from '../identity/node-key.js';
import type { IngestSource } from '../ingest/source.js';
import type { NostrEvent } from '../nostr/event.js';
import { GOSSIP_KIND, parseGossipContent, type GossipContent } from './gossip-guard.js';
import type { PeerLink } from './peer-link.js';

export { GOSSIP_KIND };
/** Members nobody has heard of for this long are forgotten (a decommissioned node must not look partitioned forever). */
const FORGET_AFTER_MS = 10 * 60 * 1000;

export interface GossipMember {
  nodeId: string;
  url: string | null;
  /** Our direct link's state, if we have one. */
  status: string;
  lastHeard: string | null;
}

interface MemberView {
  nodeId: string;
  url: string | null;
  /** When a membership update authored by this node last arrived (ms), or 0. */
  reportedAt: number;
  /** Sequence (ms clock of the author) of its last update: older or replayed updates are ignored. */
  seq: number;
  /** Node ids this member reported as directly up. */
  links: string[];
  /** Last time anyone (us directly, or a fresh report) vouched for it. */
  lastHeard: number;
}

export interface GossipOptions {
  nodeKey: NodeKey;
  ourUrl: () => string;
  /** Gossip period; reports older than `staleAfterMs` no longer count for reachability. */
  intervalMs: number;
  staleAfterMs: number;
  links: () => PeerLink[];
  isBanned: (nodeId: string) => boolean;
  broadcast: (raw: string, id: string) => void;
  /** A member and its announced URL, for peer discovery (the manager decides whether to trust it). */
  learn: (nodeId: string, url: string, author: string) => void;
  /** Whether member lists authored by this node are believed (allow-listed peers only). */
  trustsMembersOf: (author: string) => boolean;
  logger: Logger;
}

/**
 * Membership by gossip: every interval each node signs (node key) an ephemeral event listing the peers it has
 * up links to and the members it knows; events are flooded through the peer links like any other (signature
 * checked by the ingest pipeline, so forged gossip is refused). From these link-state reports each node
 * computes who is reachable, directly or through others, and flags a partition when a known member is not.
 */
export class Gossip {
  private readonly members = new Map<string, MemberView>();
  private partitionedSince: number | null = null;
  private readonly log: Logger;

  constructor(private readonly options: GossipOptions) {
    this.log = options.logger.child({ component: 'gossip' });
  }

  get selfId(): string {
    return this.options.nodeKey.nodeId;
  }

  /** Sends our membership update and re-evaluates reachability. */
  tick(): void {
    const now = Date.now();
    for (const [id, m] of this.members) {
      if (now - m.lastHeard > FORGET_AFTER_MS && !this.options.links().some((l) => l.remoteNodeId === id)) {
        this.members.delete(id);
        this.log.info({ nodeId: id }, 'member forgotten');
      }
    }
    const content: GossipContent = {
      v: 1,
      seq: now,
      url: this.options.ourUrl(),
      links: this.directUp(),
      members: this.view().members.map((m) => ({ nodeId: m.nodeId, url: m.url, status: m.status, lastHeard: m.lastHeard })),
    };
    const event = this.options.nodeKey.sign({ kind: GOSSIP_KIND, created_at: Math.floor(now / 1000), tags: [], content: JSON.stringify(content) });
    this.options.broadcast(JSON.stringify(event), event.id);
    this.evaluate();
  }

  /** A membership update accepted by the pipeline (signature verified) from a peer. */
  receive(event: NostrEvent, source: IngestSource): void {
    if (source.kind !== 'peer' || event.pubkey === this.selfId) return;
    if (this.options.isBanned(event.pubkey)) return;
    // The gossip guard refused malformed updates before they were accepted; this is defence in depth, and never
    // charged to the relaying peer (it did not write it).
    const parsed = parseGossipContent(event.content);
    if ('error' in parsed) {
      this.log.warn({ author: event.pubkey, from: source.nodeId, reason: parsed.error }, 'malformed gossip dropped');
      return;
    }
    const content: GossipContent = parsed;
    // A node becomes a member only through an allowed peer (its own report, or a trusted member list naming it):
    // an unknown author's report would add a member nobody can reach and flag a partition that is not there.
    if (!this.members.has(event.pubkey) && !this.options.trustsMembersOf(event.pubkey)) return;
    const now = Date.now();
    const m = this.member(event.pubkey);
    if (content.seq <= m.seq) return;
    m.seq = content.seq;
    m.reportedAt = now;
    m.lastHeard = now;
    m.links = content.links;
    if (typeof content.url === 'string' && /^wss?:\/\//i.test(content.url)) {
      m.url = content.url;
      this.options.learn(event.pubkey, content.url, event.pubkey);
    }
    // Member lists of nodes we do not trust as peers are ignored: fake members would look unreachable (and keep
    // us "partitioned") and would feed discovery with attacker-chosen URLs.
    if (!this.options.trustsMembersOf(event.pubkey)) {
      this.evaluate();
      return;
    }
    for (const entry of content.members) {
      if (typeof entry?.nodeId !== 'string' || !/^[0-9a-f]{64}$/.test(entry.nodeId) || entry.nodeId === this.selfId) continue;
      if (this.options.isBanned(entry.nodeId)) continue;
      const known = this.members.get(entry.nodeId);
      const other = known ?? this.member(entry.nodeId);
      if (!known) other.lastHeard = now;
      if (!other.url && typeof entry.url === 'string' && /^wss?:\/\//i.test(entry.url)) {
        other.url = entry.url;
        this.options.learn(entry.nodeId, entry.url, event.pubkey);
      }
    }
    this.evaluate();
  }

  /** A banned node leaves the view at once. */
  forget(nodeId: string): void {
    if (this.members.delete(nodeId)) this.evaluate();
  }

  view(): { members: GossipMember[]; reachable: string[]; unreachable: Array<{ nodeId: string | null; url: string | null }>; partitioned: boolean; partitionedSince: string | null } {
    const now = Date.now();
    const reachable = this.reachable();
    const links = this.options.links();
    const members: GossipMember[] = [];
    const ids = new Set<string>([...this.members.keys(), ...links.flatMap((l) => (l.remoteNodeId ? [l.remoteNodeId] : []))]);
    ids.delete(this.selfId);
    for (const id of ids) {
      if (this.options.isBanned(id)) continue;
      const m = this.members.get(id);
      const link = links.find((l) => l.remoteNodeId === id);
      const direct = link?.isUp ? now : 0;
      const heard = Math.max(m?.lastHeard ?? 0, direct, link?.heartbeat.lastHeard && link.isUp ? link.heartbeat.lastHeard : 0);
      members.push({
        nodeId: id,
        url: m?.url ?? link?.url ?? null,
        status: link?.isUp ? link.state : reachable.has(id) ? 'reachable' : link ? link.state : 'unreachable',
        lastHeard: heard > 0 ? new Date(heard).toISOString() : null,
      });
    }
    const unreachable: Array<{ nodeId: string | null; url: string | null }> = members.filter((m) => !reachable.has(m.nodeId)).map((m) => ({ nodeId: m.nodeId, url: m.url }));
    // Configured peers we never reached have no node id yet; they are still members we cannot reach.
    // (A first dial still in progress is not yet a verdict: no partition is flagged for it.)
    for (const link of links) if (!link.remoteNodeId && link.state === 'down') unreachable.push({ nodeId: null, url: link.url });
    return {
      members,
      reachable: [...reachable].filter((id) => id !== this.selfId && !this.options.isBanned(id)),
      unreachable,
      partitioned: unreachable.length > 0,
      partitionedSince: this.partitionedSince ? new Date(this.partitionedSince).toISOString() : null,
    };
  }

  private evaluate(): void {
    const view = this.view();
    if (view.partitioned && this.partitionedSince === null) {
      this.partitionedSince = Date.now();
      this.log.warn({ unreachable: view.unreachable, reachable: view.reachable }, 'partition detected');
    } else if (!view.partitioned && this.partitionedSince !== null) {
      this.log.info({ durationMs: Date.now() - this.partitionedSince, reachable: view.reachable }, 'partition healed');
      this.partitionedSince = null;
    }
  }

  /** Breadth-first search over link-state reports: our up links, then each fresh report's links. */
  private reachable(): Set<string> {
    const now = Date.now();
    const seen = new Set<string>([this.selfId]);
    const queue = this.directUp();
    for (const id of queue) seen.add(id);
    while (queue.length > 0) {
      const id = queue.shift()!;
      const m = this.members.get(id);
      if (!m || now - m.reportedAt > this.options.staleAfterMs) continue;
      for (const next of m.links) {
        if (seen.has(next) || this.options.isBanned(next)) continue;
        seen.add(next);
        queue.push(next);
      }
    }
    return seen;
  }

  private directUp(): string[] {
    return [...new Set(this.options.links().flatMap((l) => (l.isUp && l.remoteNodeId && !this.options.isBanned(l.remoteNodeId) ? [l.remoteNodeId] : [])))];
  }

  private member(nodeId: string): MemberView {
    let m = this.members.get(nodeId);
    if (!m) {
      m = { nodeId, url: null, reportedAt: 0, seq: 0, links: [], lastHeard: 0 };
      this.members.set(nodeId, m);
      this.log.info({ nodeId }, 'member learned');
    }
    return m;
  }
}

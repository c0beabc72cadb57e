import type { Logger } from 'pino';
import type { IngestSource } from '../ingest/source.js';
import { isProtected } from '../nostr/kinds.js';
import type { MessageHandler } from '../server/connection.js';
import type { StoredEvent } from '../storage/types.js';
import type { PeeringMetrics } from './metrics.js';
import { AUTH_KIND, type PeerLink } from './peer-link.js';
import { SeenIds } from './seen-ids.js';

/** Hop counts announced but not yet consumed (the EVENT was a duplicate or invalid) are forgotten past this many. */
const MAX_PENDING_HOPS = 10_000;

/**
 * Live forwarding: every event this relay accepts goes to every peer link except the one it came from, once
 * (dedup by id), as a plain `EVENT`, with a hop count: between our relays `["PEER-HOPS", id, hops]` precedes the
 * EVENT on the same connection (so proxies and third-party tools see ordinary EVENT frames); a third-party peer
 * gets the EVENT alone (its own dedup ends the flood). NIP-70 protected events are never forwarded. A link
 * that is down queues the event (bounded); what overflows is reconciled later.
 */
export class Forwarder {
  private readonly seen = new SeenIds(200_000);
  /** Hop counts announced by PEER-HOPS, read by onAccepted when the EVENT that follows is accepted. */
  private readonly hopsIn = new Map<string, number>();
  private readonly log: Logger;

  constructor(
    private readonly links: () => PeerLink[],
    private readonly maxHops: number,
    private readonly metrics: PeeringMetrics,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'forwarder' });
  }

  onAccepted(item: StoredEvent, source: IngestSource): void {
    const { event } = item;
    const announced = this.hopsIn.get(event.id);
    this.hopsIn.delete(event.id);
    if (isProtected(event) || event.kind === AUTH_KIND) return;
    if (!this.seen.add(event.id)) return;
    const hops = (source.kind === 'peer' ? (announced ?? 1) : 0) + 1;
    if (hops > this.maxHops) {
      this.log.debug({ id: event.id, hops }, 'hop limit reached; not forwarding');
      return;
    }
    for (const link of this.links()) {
      if (link.state === 'banned') continue;
      if (source.kind === 'peer' && (link.remoteNodeId === source.nodeId || link.url === source.url)) continue;
      link.forward(item.raw, event.id, hops);
      this.metrics.forwarded.inc({ peer: link.url });
    }
  }

  /** Sends one of our own events (gossip) to every link that is up, bypassing queues: stale gossip is useless. */
  broadcast(raw: string, id: string): void {
    this.seen.add(id);
    for (const link of this.links()) if (link.isUp) link.sendEvent(raw, id, 1);
  }

  /** `["PEER-HOPS", id, hops]` from an authenticated peer: the hop count of the EVENT that follows. */
  peerHopsHandler(): MessageHandler {
    return (connection, message) => {
      const [, id, hops] = message;
      if (connection.source.kind !== 'peer') {
        connection.notice('auth-required: PEER-HOPS is for authenticated peer relays');
        return;
      }
      if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id) || typeof hops !== 'number' || !Number.isInteger(hops) || hops < 1 || hops > 64) {
        connection.notice('invalid: PEER-HOPS needs an event id and a hop count 1..64');
        return;
      }
      this.hopsIn.set(id, Math.max(hops, this.hopsIn.get(id) ?? 0));
      if (this.hopsIn.size > MAX_PENDING_HOPS) this.hopsIn.delete(this.hopsIn.keys().next().value as string);
    };
  }
}

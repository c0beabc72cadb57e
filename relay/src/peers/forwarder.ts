import type { Logger } from 'pino';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { IngestSource } from '../ingest/source.js';
import { isProtected } from '../nostr/kinds.js';
import type { MessageHandler } from '../server/connection.js';
import { okFrame } from '../server/messages.js';
import type { StoredEvent } from '../storage/types.js';
import type { PeeringMetrics } from './metrics.js';
import { AUTH_KIND, type PeerLink } from './peer-link.js';
import { SeenIds } from './seen-ids.js';

/**
 * Live forwarding: every event this relay accepts goes to every peer link except the one it came from, once
 * (dedup by id), with a hop count. Between our relays events travel as `["PEER-EVENT", event, hops]` so the
 * count survives; a third-party peer gets plain `EVENT` (its own dedup ends the flood). NIP-70 protected events
 * are never forwarded. A link that is down queues the frame (bounded); what overflows is reconciled later.
 */
export class Forwarder {
  private readonly seen = new SeenIds(200_000);
  /** Hop counts of PEER-EVENTs being ingested, read by onAccepted while the submit is in flight. */
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
    if (isProtected(event) || event.kind === AUTH_KIND) return;
    if (!this.seen.add(event.id)) return;
    const hops = (source.kind === 'peer' ? (this.hopsIn.get(event.id) ?? 1) : 0) + 1;
    if (hops > this.maxHops) {
      this.log.debug({ id: event.id, hops }, 'hop limit reached; not forwarding');
      return;
    }
    for (const link of this.links()) {
      if (link.state === 'banned') continue;
      if (source.kind === 'peer' && (link.remoteNodeId === source.nodeId || link.url === source.url)) continue;
      link.forward(link.remoteIsOurs ? `["PEER-EVENT",${item.raw},${hops}]` : `["EVENT",${item.raw}]`, event.id);
      this.metrics.forwarded.inc({ peer: link.url });
    }
  }

  /** Sends one of our own events (gossip) to every link that is up, bypassing queues: stale gossip is useless. */
  broadcast(raw: string, id: string): void {
    this.seen.add(id);
    for (const link of this.links()) {
      if (link.isUp) link.send(link.remoteIsOurs ? `["PEER-EVENT",${raw},1]` : `["EVENT",${raw}]`);
    }
  }

  /** `["PEER-EVENT", event, hops]` from an authenticated peer: an EVENT that carries its hop count. */
  peerEventHandler(pipeline: IngestPipeline): MessageHandler {
    return async (connection, message) => {
      const [, event, hops] = message;
      const id = typeof (event as { id?: unknown } | null)?.id === 'string' ? (event as { id: string }).id.slice(0, 64) : '';
      if (connection.source.kind !== 'peer') {
        connection.send(okFrame(id, false, 'auth-required: PEER-EVENT is for authenticated peer relays'));
        return;
      }
      if (typeof hops !== 'number' || !Number.isInteger(hops) || hops < 1 || hops > 64) {
        connection.send(okFrame(id, false, 'invalid: hop count must be an integer 1..64'));
        return;
      }
      this.hopsIn.set(id, Math.max(hops, this.hopsIn.get(id) ?? 0));
      try {
        const result = await pipeline.submit(event, connection.source, connection);
        connection.send(okFrame(id, result.ok, result.message));
      } finally {
        this.hopsIn.delete(id);
      }
    };
  }
}

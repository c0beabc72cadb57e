import type { NostrEvent } from '../nostr/event.js';
import type { IngestSource } from './source.js';

export interface RecentEntry {
  id: string;
  pubkey: string;
  kind: number;
  created_at: number;
  receivedAt: string;
  /** `client` or `peer`, with the peer's node id or the client's address. */
  source: IngestSource['kind'];
  from: string;
  stored: boolean;
}

/** The last N accepted events with where they came from, for `GET /admin/events/recent`. */
export class RecentEvents {
  private readonly entries: RecentEntry[] = [];
  constructor(private readonly capacity = 200) {}

  add(event: NostrEvent, source: IngestSource, stored: boolean): void {
    this.entries.push({
      id: event.id,
      pubkey: event.pubkey,
      kind: event.kind,
      created_at: event.created_at,
      receivedAt: new Date().toISOString(),
      source: source.kind,
      from: source.kind === 'client' ? source.address : source.nodeId,
      stored,
    });
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  /** Newest first. */
  list(limit = 50): RecentEntry[] {
    return this.entries.slice(-limit).reverse();
  }
}

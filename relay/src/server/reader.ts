import type { Filter } from '../nostr/filter.js';
import type { EventStore, StoredEvent } from '../storage/types.js';

/** What a REQ's initial query gets: the events, and a reason when they may be incomplete (degraded mode). */
export interface ReadResult {
  events: StoredEvent[];
  partialReason?: string;
}

/** Serves the initial query of a REQ. The storage layer decides where from (PostgreSQL, or caches while degraded). */
export interface EventReader {
  read(filters: Filter[], signal: AbortSignal): Promise<ReadResult>;
}

/** The plain reader: PostgreSQL only. */
export function storeReader(store: EventStore): EventReader {
  return { read: async (filters, signal) => ({ events: await store.query(filters, signal) }) };
}

import type { Filter } from '../nostr/filter.js';
import type { EventStore } from '../storage/types.js';

/** What a REQ sends for one stored event: its JSON exactly as stored. */
export interface ServedEvent {
  raw: string;
}

/**
 * What a REQ's initial query gets: pages of events, read as they are sent (never the whole answer in memory), and,
 * once the pages are consumed, the reason they may be incomplete (degraded mode), if any.
 */
export interface ReadResult {
  pages: AsyncIterable<ServedEvent[]>;
  partialReason(): string | undefined;
}

/** Serves the initial query of a REQ. The storage layer decides where from (PostgreSQL, or caches while degraded). */
export interface EventReader {
  read(filters: Filter[], signal: AbortSignal): ReadResult;
}

/** The plain reader: PostgreSQL only. */
export function storeReader(store: EventStore): EventReader {
  return { read: (filters, signal) => ({ pages: store.stream(filters, signal), partialReason: () => undefined }) };
}

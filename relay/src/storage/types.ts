import type { NostrEvent } from '../nostr/event.js';
import type { Filter } from '../nostr/filter.js';

/**
 * What happened to one event handed to the store. `stored` is only reported after the transaction that
 * holds it has committed: callers answer `OK true` on it and nothing else.
 */
export type SaveOutcome =
  | { status: 'stored' }
  /** Already stored (ON CONFLICT): `OK true "duplicate: ..."`. */
  | { status: 'duplicate' }
  /** Refused by a kind rule; `reason` carries its NIP-01 prefix, e.g. `invalid: a newer version is stored`, `blocked: deleted`. */
  | { status: 'rejected'; reason: string };

/** An event as it is kept: the parsed event plus the exact JSON served to clients (preserves non-standard fields). */
export interface StoredEvent {
  event: NostrEvent;
  raw: string;
}

/** Where a known id stands, for the duplicate check that runs before the (expensive) signature check. */
export type IdState = 'stored' | 'deleted';

/** Infrastructure failure (connection lost, timeout, pool exhausted, server in recovery). Never a verdict on the event. */
export class StorageError extends Error {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

export interface EventStore {
  /** Applies schema migrations (idempotent). */
  migrate(): Promise<void>;
  /**
   * Saves one event; calls are grouped into batched transactions (group commit). Applies the kind rules:
   * replaceable/addressable keep only the newest (ties: lowest id), NIP-09 deletions (same author only,
   * by `e` and by `a` tags), refuses re-submission of a deleted event. Throws StorageError on failure.
   */
  save(item: StoredEvent): Promise<SaveOutcome>;
  /** Batched lookup of ids that are stored or were deleted. Throws StorageError on failure. */
  lookup(ids: string[]): Promise<Map<string, IdState>>;
  /**
   * Initial query of a REQ: for each filter up to its limit, newest first (ties: lowest id), expired events
   * left out; results of several filters are merged without duplicates. Honours the AbortSignal and the
   * store's statement timeout. Throws StorageError on failure.
   */
  query(filters: Filter[], signal?: AbortSignal): Promise<StoredEvent[]>;
  /**
   * The same answer as `query`, read in pages as the consumer asks for them: filters one after the other, each
   * newest first, every id at most once. Stopping early (break, abort) releases what the read holds.
   */
  stream(filters: Filter[], signal?: AbortSignal): AsyncIterable<Array<{ id: string; raw: string }>>;
  /** Number of stored events (for status and integrity checks). */
  count(): Promise<number>;
  /** Cheap liveness probe (`SELECT 1`) with a short timeout. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Redis-backed dedup marks and cache of recent events. Every method throws on a Redis failure. */
export interface EventCache {
  /** Ids among these that Redis has seen recently (stored or deleted). */
  seen(ids: string[]): Promise<Set<string>>;
  /** Remembers stored ids for the dedup TTL. */
  markSeen(ids: string[]): Promise<void>;
  /** Keeps the most recent events (bounded) for fast serving and for degraded mode. */
  remember(items: StoredEvent[]): Promise<void>;
  /** Recent cached events matching the filters, newest first, per-filter limits applied. */
  query(filters: Filter[]): Promise<StoredEvent[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

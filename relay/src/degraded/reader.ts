import type { Logger } from 'pino';
import type { ResilientCache } from '../cache/resilient-cache.js';
import type { Filter } from '../nostr/filter.js';
import type { EventReader, ReadResult } from '../server/reader.js';
import type { ResilientStore } from '../storage/resilient-store.js';
import { StorageError, type StoredEvent } from '../storage/types.js';
import { mergeForFilters } from './merge.js';

/**
 * Serves a REQ's initial query. Normal mode: PostgreSQL. Degraded mode (or a failed PostgreSQL query): whatever the
 * relay still has — PostgreSQL if it answers, the Redis cache, the journal — merged, with a reason for the
 * "partial results" NOTICE whenever PostgreSQL could not be part of the answer.
 */
export function resilientReader(store: ResilientStore, cache: ResilientCache, log: Logger): EventReader {
  return {
    async read(filters: Filter[], signal: AbortSignal): Promise<ReadResult> {
      let pgFailed = false;
      if (store.mode === 'normal') {
        try {
          return { events: await store.query(filters, signal) };
        } catch (err) {
          if (signal.aborted || !(err instanceof StorageError) || err.code === 'aborted') throw err;
          log.warn({ err, code: err.code }, 'initial query failed in PostgreSQL; answering from the cache and the journal');
          pgFailed = true;
        }
      }
      const sources: StoredEvent[][] = [store.journalMatches(filters)];
      const missing: string[] = [];
      if (!pgFailed && store.databaseReachable) {
        try {
          sources.push(await store.query(filters, signal));
        } catch (err) {
          if (signal.aborted) throw err;
          log.warn({ err }, 'initial query failed in PostgreSQL while degraded');
          missing.push('PostgreSQL');
        }
      } else {
        missing.push('PostgreSQL');
      }
      if (missing.length > 0) {
        try {
          sources.push(await cache.query(filters));
        } catch (err) {
          log.debug({ err }, 'cache query failed while degraded');
          missing.push('the Redis cache');
        }
      }
      const events = mergeForFilters(filters, sources);
      if (missing.length === 0) return { events };
      const from = missing.includes('the Redis cache') ? 'the local journal only' : 'the Redis cache and the local journal';
      return { events, partialReason: `degraded mode: ${missing.join(' and ')} unavailable; served from ${from}` };
    },
  };
}

import type { Logger } from 'pino';
import type { ResilientCache } from '../cache/resilient-cache.js';
import type { Filter } from '../nostr/filter.js';
import type { EventReader, ReadResult, ServedEvent } from '../server/reader.js';
import type { ResilientStore } from '../storage/resilient-store.js';
import { StorageError, type StoredEvent } from '../storage/types.js';
import { mergeForFilters } from './merge.js';

/**
 * Serves a REQ's initial query. Normal mode: PostgreSQL, streamed page by page. Degraded mode (or a PostgreSQL query
 * that fails before its first page): whatever the relay still has — PostgreSQL if it answers, the Redis cache, the
 * journal — merged, with a reason for the "partial results" NOTICE whenever PostgreSQL could not be part of the
 * answer. A failure after pages were sent is not papered over: the REQ ends with an error (CLOSED).
 */
export function resilientReader(store: ResilientStore, cache: ResilientCache, log: Logger): EventReader {
  return {
    read(filters: Filter[], signal: AbortSignal): ReadResult {
      let partial: string | undefined;
      async function* pages(): AsyncGenerator<ServedEvent[]> {
        let pgFailed = false;
        if (store.mode === 'normal') {
          let started = false;
          try {
            for await (const page of store.stream(filters, signal)) {
              started = true;
              yield page;
            }
            return;
          } catch (err) {
            if (started || signal.aborted || !(err instanceof StorageError) || err.code === 'aborted') throw err;
            log.warn({ err, code: err.code }, 'initial query failed in PostgreSQL; answering from the cache and the journal');
            pgFailed = true;
          }
        }
        const answer = await degradedAnswer(filters, signal, pgFailed);
        partial = answer.partialReason;
        if (answer.events.length > 0) yield answer.events;
      }
      return { pages: pages(), partialReason: () => partial };
    },
  };

  async function degradedAnswer(filters: Filter[], signal: AbortSignal, pgFailed: boolean): Promise<{ events: StoredEvent[]; partialReason?: string }> {
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
  }
}

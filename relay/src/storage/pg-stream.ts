import type pg from 'pg';
import Cursor from 'pg-cursor';
import type { Logger } from 'pino';
import type { Filter } from '../nostr/filter.js';
import { cancelRunningQuery, checkout } from './pg-connections.js';
import { toStorageError } from './pg-errors.js';
import type { PoolGate } from './pool-gate.js';
import { buildFilterQuery } from './sql-filter.js';
import { StorageError } from './types.js';

/** One served row: the stored JSON as it was received (never parsed again on the way out). */
export interface RawEvent {
  id: string;
  raw: string;
}

/** Rows per page: small enough that a page of maximum-size events stays a few MB, large enough to cost few round trips. */
export const STREAM_PAGE_ROWS = 200;

export interface FilterStreamOptions {
  pool: pg.Pool;
  gate: PoolGate;
  log: Logger;
  maxQueryLimit: number;
  now: () => number;
  pageRows?: number;
}

/**
 * A REQ's initial answer read through a PostgreSQL portal (pg-cursor) one page at a time, so what one REQ holds in
 * memory is a page, not its whole result (5,000 rows of up to the largest event each). Filters run one after the
 * other, each newest first (ties: lowest id); an id already served by an earlier filter is skipped. The read
 * connection and its gate permit are held only while a filter's pages are being read, and are released when the
 * consumer stops early (break, abort, or an error), because a generator's `finally` runs on `return()`.
 */
export async function* streamFilters(o: FilterStreamOptions, filters: Filter[], signal?: AbortSignal): AsyncGenerator<RawEvent[]> {
  if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
  const now = o.now();
  const queries = filters.map((f) => buildFilterQuery(f, now, o.maxQueryLimit)).filter((q) => q !== null);
  // Bounded by the sum of the (clamped) filter limits.
  const served = new Set<string>();
  for (const q of queries) {
    for await (const rows of filterPages(o, q.text, q.values, signal)) {
      const page = rows.filter((r) => !served.has(r.id));
      for (const r of page) served.add(r.id);
      if (page.length > 0) yield page;
    }
  }
}

async function* filterPages(o: FilterStreamOptions, text: string, values: unknown[], signal?: AbortSignal): AsyncGenerator<RawEvent[]> {
  const leave = await o.gate.acquire(signal);
  let client: pg.PoolClient;
  let release: (err?: Error) => void;
  try {
    ({ client, release } = await checkout(o.pool, o.log));
  } catch (err) {
    leave();
    throw toStorageError(err, 'query failed');
  }
  let failed: Error | undefined;
  let cancelled = false;
  const onAbort = (): void => {
    cancelled = true;
    cancelRunningQuery(client, o.log);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const cursor = client.query(new Cursor<RawEvent>(text, values));
  try {
    for (;;) {
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
      let rows: RawEvent[];
      try {
        rows = await cursor.read(o.pageRows ?? STREAM_PAGE_ROWS);
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
        if (signal?.aborted) throw new StorageError('query aborted', 'aborted', { cause: err });
        throw toStorageError(err, 'query failed');
      }
      if (rows.length === 0) return;
      yield rows;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // A portal left open (the consumer stopped early) is closed; a connection whose query failed, was cancelled, or
    // does not confirm the close in time is discarded instead of handed to the next query (a dead socket would
    // never confirm it, and a late cancel could hit whatever runs next).
    if (!failed && !cancelled) failed = await closeWithin(cursor, CLOSE_TIMEOUT_MS);
    release(failed ?? (cancelled ? new Error('query cancelled') : undefined));
    leave();
  }
}

const CLOSE_TIMEOUT_MS = 5_000;

async function closeWithin(cursor: Cursor<RawEvent>, ms: number): Promise<Error | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      cursor.close().then(() => undefined, (err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
      new Promise<Error>((resolve) => {
        timer = setTimeout(() => resolve(new Error(`portal close not confirmed within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

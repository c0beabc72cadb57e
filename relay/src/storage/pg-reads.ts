import type pg from 'pg';
import type { Logger } from 'pino';
import type { NostrEvent } from '../nostr/event.js';
import { compareNewestFirst, type Filter } from '../nostr/filter.js';
import { cancelRunningQuery, checkout, type Checkout } from './pg-connections.js';
import { toStorageError } from './pg-errors.js';
import type { PoolGate } from './pool-gate.js';
import { buildFilterQuery } from './sql-filter.js';
import { type IdState, type StoredEvent, StorageError } from './types.js';

interface LookupWaiter {
  ids: string[];
  resolve(m: Map<string, IdState>): void;
  reject(err: unknown): void;
}

/** Ids per lookup query: a flood of distinct ids becomes several bounded queries, not one unbounded array. */
const LOOKUP_MAX_IDS = 2000;

/**
 * The duplicate check's id lookups, on the write pool (they are part of ingest, so a flood of REQs on the read pool
 * never slows a publish). One query at a time: lookups that arrive while it runs wait and share the next one. Firing
 * one query per tick instead let a slow database (100 ms per reply) stack dozens of them on the write pool, and the
 * group commit then timed out waiting for a connection (`pool-exhausted`, degraded mode) while PostgreSQL was fine.
 */
export class IdLookups {
  private waiters: LookupWaiter[] = [];
  private running = false;

  constructor(private readonly pool: pg.Pool) {}

  lookup(ids: string[]): Promise<Map<string, IdState>> {
    if (ids.length === 0) return Promise.resolve(new Map());
    return new Promise((resolve, reject) => {
      this.waiters.push({ ids, resolve, reject });
      if (!this.running && this.waiters.length === 1) process.nextTick(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.waiters.length > 0) await this.run(this.take());
    } finally {
      this.running = false;
    }
  }

  /** Waiters from the front whose ids fit one query (always at least one, whatever its size). */
  private take(): LookupWaiter[] {
    let n = 0;
    let ids = 0;
    while (n < this.waiters.length && (n === 0 || ids + this.waiters[n]!.ids.length <= LOOKUP_MAX_IDS)) ids += this.waiters[n++]!.ids.length;
    return this.waiters.splice(0, n);
  }

  private async run(waiters: LookupWaiter[]): Promise<void> {
    const all = [...new Set(waiters.flatMap((w) => w.ids))];
    let found: Map<string, IdState>;
    try {
      const res = await this.pool.query<{ id: string; state: IdState }>(
        `SELECT id, 'stored' AS state FROM events WHERE id = ANY($1::text[])
         UNION ALL SELECT id, 'deleted' FROM tombstones WHERE id = ANY($1::text[])`,
        [all],
      );
      found = new Map();
      for (const r of res.rows) if (found.get(r.id) !== 'deleted') found.set(r.id, r.state);
    } catch (err) {
      const failure = toStorageError(err, 'id lookup failed');
      for (const w of waiters) w.reject(failure);
      return;
    }
    for (const w of waiters) {
      const m = new Map<string, IdState>();
      for (const id of w.ids) {
        const s = found.get(id);
        if (s) m.set(id, s);
      }
      w.resolve(m);
    }
  }
}

export interface FilterReadsOptions {
  pool: pg.Pool;
  /** Admission to the read pool: abort-aware and bounded. */
  gate: PoolGate;
  log: Logger;
  maxQueryLimit: number;
  now: () => number;
}

/** REQ initial queries on the read pool. An aborted query leaves the wait queue, or is cancelled on the server. */
export class FilterReads {
  constructor(private readonly o: FilterReadsOptions) {}

  async query(filters: Filter[], signal?: AbortSignal): Promise<StoredEvent[]> {
    if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
    const now = this.o.now();
    const queries = filters.map((f) => buildFilterQuery(f, now, this.o.maxQueryLimit)).filter((q) => q !== null);
    const results = await Promise.all(queries.map((q) => this.runQuery(q.text, q.values, signal)));
    const byId = new Map<string, StoredEvent>();
    for (const rows of results) {
      for (const r of rows) {
        if (byId.has(r.id)) continue;
        byId.set(r.id, { event: JSON.parse(r.raw) as NostrEvent, raw: r.raw });
      }
    }
    return [...byId.values()].sort((a, b) => compareNewestFirst(a.event, b.event));
  }

  private async runQuery(text: string, values: unknown[], signal?: AbortSignal): Promise<{ id: string; raw: string }[]> {
    const { log } = this.o;
    // Waiting for a permit is where a flood queues up; an abort there costs nothing and frees the place at once.
    const leave = await this.o.gate.acquire(signal);
    let held: Checkout;
    try {
      held = await checkout(this.o.pool, log);
    } catch (err) {
      leave();
      throw toStorageError(err, 'query failed');
    }
    const { client, release } = held;
    let broken: Error | undefined;
    let cancelled = false;
    // Cancelling server-side frees the backend now rather than when the statement timeout fires.
    const onAbort = (): void => {
      cancelled = true;
      cancelRunningQuery(client, log);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
      const res = await client.query<{ id: string; raw: string }>(text, values);
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
      return res.rows;
    } catch (err) {
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted', { cause: err });
      const failure = toStorageError(err, 'query failed');
      if (failure.code !== 'statement-timeout') broken = failure;
      throw failure;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // A cancel request travels on its own socket and may land after this query ended: never hand that backend to
      // the next query, which the late cancel would kill.
      release(cancelled ? (broken ?? new Error('query cancelled')) : broken);
      leave();
    }
  }
}

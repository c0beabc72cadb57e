import type pg from 'pg';
import type { Logger } from 'pino';
import { DELETION_KIND } from '../nostr/kinds.js';
import { checkout } from './pg-connections.js';
import { isDataError, isStatementTimeout, toStorageError } from './pg-errors.js';
import { WRITE_LOCK, applyRows, precheck, toRow, type Row } from './pg-write-rules.js';
import type { SaveOutcome, StoredEvent } from './types.js';

export interface StoreStats {
  /** Write transactions committed. */
  transactions: number;
  /** Events carried by those transactions. */
  batchedEvents: number;
  largestBatch: number;
}

/** Why the database refused one event that the bisection isolated (counted by the caller's metrics). */
export type PoisonKind = 'data-error' | 'statement-timeout';

export interface GroupCommitOptions {
  pool: pg.Pool;
  log: Logger;
  batchSize: number;
  maxInFlight: number;
  now: () => number;
  /** Told about every event refused because the database failed on it alone. */
  onPoison?: (kind: PoisonKind, id: string) => void;
}

/** State of one batch's bisection: whether anything committed yet, and the statement timeouts it may still cost. */
interface Bisection {
  progress: boolean;
  timeouts: number;
  budget: number;
}

interface Pending {
  item: StoredEvent;
  resolve(outcome: SaveOutcome): void;
  reject(err: unknown): void;
}

export const REASON_DB_REFUSED = 'error: the database refused this event';
export const REASON_DB_TIMEOUT = 'error: the database timed out storing this event';

/**
 * Group commit: saves queue up while the write transactions in flight (a small fixed number) run, and the queue is
 * written as the next batch, up to batchSize events per transaction. A batch that fails because of one event (a data
 * error, or a statement timeout that its other half does not share) is bisected so that event alone is refused.
 */
export class GroupCommit {
  readonly stats: StoreStats = { transactions: 0, batchedEvents: 0, largestBatch: 0 };
  private queue: Pending[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private flushScheduled = false;

  constructor(private readonly o: GroupCommitOptions) {}

  save(item: StoredEvent): Promise<SaveOutcome> {
    return new Promise<SaveOutcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.scheduleFlush();
    });
  }

  get idle(): boolean {
    return this.inFlight.size === 0 && this.queue.length === 0 && !this.flushScheduled;
  }

  /** Waits until everything queued has committed or failed. */
  async drain(): Promise<void> {
    while (!this.idle) {
      if (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      else await new Promise((r) => setImmediate(r));
    }
  }

  private scheduleFlush(): void {
    if (this.inFlight.size >= this.o.maxInFlight || this.flushScheduled) return;
    this.flushScheduled = true;
    // Let the rest of this tick's saves join the first batch instead of sending a batch of one.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight.size < this.o.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.o.batchSize);
      const run: Promise<void> = this.writeBatch(batch).finally(() => {
        this.inFlight.delete(run);
        // Whatever queued up meanwhile becomes the next batch.
        this.flush();
      });
      this.inFlight.add(run);
    }
  }

  /** Never rejects: every failure, expected or not, is handed to the batch's callers (an unhandled one would end the process). */
  private async writeBatch(batch: Pending[]): Promise<void> {
    const outcomes = new Map<Pending, SaveOutcome>();
    // The first submission of an id is written; later copies in the same batch share its outcome.
    const primaries = new Map<string, Pending>();
    try {
      const rows = new Map<Pending, Row>();
      const now = this.o.now();
      for (const p of batch) {
        const early = precheck(p.item.event, now);
        if (early) {
          outcomes.set(p, early);
          continue;
        }
        const id = p.item.event.id;
        if (primaries.has(id)) continue;
        primaries.set(id, p);
        rows.set(p, toRow(p.item));
      }
      if (rows.size > 0) {
        const n = rows.size;
        const decided = await this.writeSplitting([...rows.values()], { progress: false, timeouts: 0, budget: 2 * Math.ceil(Math.log2(n + 1)) + 4 });
        for (const [p, row] of rows) outcomes.set(p, decided.get(row.ev.id)!);
      }
    } catch (err) {
      const failure = toStorageError(err, 'saving events failed');
      this.o.log.warn({ err: failure, code: failure.code, events: batch.length }, 'write batch failed');
      for (const p of batch) p.reject(failure);
      return;
    }
    for (const p of batch) {
      const own = outcomes.get(p);
      if (own) {
        p.resolve(own);
        continue;
      }
      const primary = primaries.get(p.item.event.id)!;
      const outcome = outcomes.get(primary)!;
      p.resolve(p === primary || outcome.status !== 'stored' ? outcome : { status: 'duplicate' });
    }
  }

  /**
   * Writes rows in one transaction; if that fails because of some event's data, retries them in halves so only the
   * offending event is refused. A statement timeout is bisected the same way, but an event is blamed for one only once
   * some other part of the batch has committed (`b.progress`): when nothing goes through (the whole batch and both of
   * its halves time out) the database is slow for everyone, and the timeout propagates (an infrastructure error:
   * degraded mode, replay retries later) instead of refusing good events. The number of timeouts one bisection may
   * cost is bounded (`b.budget`, about two per halving), for the same reason.
   */
  private async writeSplitting(rows: Row[], b: Bisection): Promise<Map<string, SaveOutcome>> {
    try {
      const done = await this.writeRows(rows);
      b.progress = true;
      return done;
    } catch (err) {
      const timeout = isStatementTimeout(err);
      if (!timeout && !isDataError(err)) throw err;
      if (timeout && ++b.timeouts > b.budget) throw err;
      if (rows.length === 1) {
        if (timeout && !b.progress) throw err;
        const id = rows[0]!.ev.id;
        const kind: PoisonKind = timeout ? 'statement-timeout' : 'data-error';
        this.o.log.warn({ err, id, kind }, timeout ? 'event refused: its insert timed out while the rest of its batch committed' : 'event refused by the database');
        this.o.onPoison?.(kind, id);
        return new Map([[id, { status: 'rejected', reason: timeout ? REASON_DB_TIMEOUT : REASON_DB_REFUSED }]]);
      }
      // Halving finds one bad event in about 2*log2(n) small transactions instead of n.
      this.o.log.warn({ err, events: rows.length, cause: timeout ? 'statement-timeout' : 'data-error' }, 'write batch failed; retrying it in halves');
      const half = Math.ceil(rows.length / 2);
      const left = rows.slice(0, half);
      const right = rows.slice(half);
      if (!timeout || b.progress) {
        const first = await this.writeSplitting(left, b);
        for (const [id, o] of await this.writeSplitting(right, b)) first.set(id, o);
        return first;
      }
      // No evidence yet: see whether either half commits whole before digging into one.
      const l = await this.attempt(left, b);
      if (l !== 'timeout') {
        for (const [id, o] of await this.writeSplitting(right, b)) l.set(id, o);
        return l;
      }
      const r = await this.attempt(right, b);
      if (r === 'timeout') throw err;
      // The right half committed, so the database is writing: the left half's timeout is one of its events.
      for (const [id, o] of await this.writeSplitting(left, b)) r.set(id, o);
      return r;
    }
  }

  /** One try of these rows as a whole: their outcomes, or 'timeout'; a data error is bisected as usual. */
  private async attempt(rows: Row[], b: Bisection): Promise<Map<string, SaveOutcome> | 'timeout'> {
    try {
      const done = await this.writeRows(rows);
      b.progress = true;
      return done;
    } catch (err) {
      if (isStatementTimeout(err)) {
        if (++b.timeouts > b.budget) throw err;
        return 'timeout';
      }
      if (isDataError(err)) return this.writeSplitting(rows, b);
      throw err;
    }
  }

  private async writeRows(rows: Row[]): Promise<Map<string, SaveOutcome>> {
    const { client, release } = await checkout(this.o.pool, this.o.log);
    let broken: Error | undefined;
    try {
      const hasDeletion = rows.some((r) => r.ev.kind === DELETION_KIND);
      // One round trip: BEGIN plus the write lock (constants only, so the simple protocol is safe here).
      await client.query(
        `BEGIN; SELECT ${hasDeletion ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared'}(${WRITE_LOCK[0]}, ${WRITE_LOCK[1]})`,
      );
      const result = await applyRows(client, rows, hasDeletion);
      await client.query('COMMIT');
      this.stats.transactions += 1;
      this.stats.batchedEvents += rows.length;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, rows.length);
      return result;
    } catch (err) {
      if (!isDataError(err) && !isStatementTimeout(err)) broken = err instanceof Error ? err : new Error(String(err));
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The original error is what the callers need; a failed rollback just means the connection is gone.
        broken ??= rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        this.o.log.debug({ err: rollbackErr }, 'rollback failed');
      }
      throw err;
    } finally {
      // Passing an error discards the connection instead of returning a possibly broken one to the pool.
      release(broken);
    }
  }
}


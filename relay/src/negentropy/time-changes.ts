import type { Logger } from 'pino';
import type pg from 'pg';

/** Something that caches per-time-window facts about the events table and must forget what a change touched. */
export interface TimeChangeListener {
  /** Events with from <= created_at <= to changed (inserted, deleted); null: anything may have changed. */
  invalidate(range: { from: number; to: number } | null): void;
}

/** The log records created_at >> BUCKET_BITS (migration 4): one row per 1024 seconds touched per statement. */
const BUCKET_BITS = 10;
/** More change rows than this in one poll: every listener forgets everything instead. */
const MAX_BUCKETS_PER_POLL = 20_000;
/** Polled at least this often, so the log is trimmed even when no sync asks for a poll. */
const POLL_EVERY_MS = 30_000;
/** Invalidations remembered for changedSince (older ones make it answer "changed"). */
const HISTORY = 4096;

type Range = { from: number; to: number } | null;

/**
 * Reads `event_time_changes` (written by triggers on `events`, migration 4) and tells the listeners which
 * created_at values changed. Rows are read by transaction id: every row this poll cannot see belongs to a
 * transaction at or after the xmin of this poll's snapshot, so the next poll reads from that xmin and a
 * transaction committing late is never missed. Rows seen before are read again while the horizon has not passed
 * them; their seq (migration 5) keeps them from being applied twice. What was read is trimmed. One relay process per database reads the log (its trim would rob a second reader).
 */
export class EventTimeChanges {
  private horizon: string | null = null;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private readonly listeners = new Set<TimeChangeListener>();
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  /** Completed polls; a summary computed after poll N is stale if a later poll invalidated its range. */
  private gen = 0;
  private history: Array<{ gen: number; range: Range }> = [];
  /** The newest generation whose invalidations were dropped from the history. */
  private droppedThrough = 0;
  /** Seqs of the rows the last poll read: those still at or past the horizon are read again, not applied again. */
  private applied = new Set<string>();

  constructor(private readonly pool: pg.Pool, logger: Logger) {
    this.log = logger.child({ component: 'event-time-changes' });
  }

  get generation(): number {
    return this.gen;
  }

  /**
   * Whether a poll completed after `generation` touched [since, until]: a summary read from the database after
   * that generation's poll may then predate a change the poll already applied (and will not apply again), so it
   * must not be cached. Also true when the history no longer reaches back that far.
   */
  changedSince(generation: number, since: number, until: number): boolean {
    if (generation === this.gen) return false;
    if (this.droppedThrough > generation) return true;
    return this.history.some((h) => h.gen > generation && (h.range === null || (h.range.to >= since && h.range.from <= until)));
  }

  subscribe(listener: TimeChangeListener): void {
    this.listeners.add(listener);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.poll().catch(() => undefined), POLL_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Applies every change committed before this call. A poll already running started too early to count, so the
   * caller waits for the one after it (shared by everyone who asked meanwhile). On a database error every
   * listener forgets everything and the error is thrown.
   */
  poll(): Promise<void> {
    if (this.queued) return this.queued;
    const before = this.running ?? Promise.resolve();
    const next: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        this.running = next;
        return this.pollOnce();
      })
      .finally(() => {
        if (this.running === next) this.running = null;
      });
    this.queued = next;
    return next;
  }

  private async pollOnce(): Promise<void> {
    try {
      // Rows of transactions still open at the last poll are read again (the horizon is the oldest open
      // transaction anywhere in the cluster, which another database's long transaction can hold back): a row
      // already applied is recognised by its seq and not applied twice, so it neither drops the cache again
      // nor makes a fresh summary look stale.
      const res = await this.pool.query<{ xmin: string; rows: Array<[string, string | null]> | null }>(
        `SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
                (SELECT json_agg(json_build_array(c.seq::text, c.bucket::text)) FROM (
                   SELECT seq, bucket FROM event_time_changes
                    WHERE $1::xid8 IS NOT NULL AND xid >= $1::xid8 LIMIT ${MAX_BUCKETS_PER_POLL + 1}) c) AS rows`,
        [this.horizon],
      );
      const row = res.rows[0]!;
      const rows = row.rows ?? [];
      const gen = this.gen + 1;
      if (rows.length > MAX_BUCKETS_PER_POLL) {
        this.forgetAll(gen);
        this.applied = new Set();
      } else {
        const applied = new Set<string>();
        for (const [seq, bucket] of rows) {
          applied.add(seq);
          if (this.applied.has(seq)) continue;
          if (bucket === null) this.forgetAll(gen);
          else {
            const from = Number(bucket) * 2 ** BUCKET_BITS;
            this.apply(gen, { from, to: from + 2 ** BUCKET_BITS - 1 });
          }
        }
        this.applied = applied;
      }
      this.gen = gen;
      const previous = this.horizon;
      this.horizon = row.xmin;
      // Rows below the previous horizon went at the last poll: the range keeps the delete off their dead index
      // entries (a bulk load leaves many until vacuum); nothing read, nothing to delete.
      if (previous !== null && rows.length > 0) {
        await this.pool.query('DELETE FROM event_time_changes WHERE xid >= $1::xid8 AND xid < $2::xid8', [previous, row.xmin]);
      } else if (previous === null) {
        await this.pool.query('DELETE FROM event_time_changes WHERE xid < $1::xid8', [row.xmin]);
      }
    } catch (err) {
      this.applied = new Set();
      this.forgetAll(++this.gen);
      this.log.warn({ err }, 'reading the event time change log failed; cached window fingerprints forgotten');
      throw err;
    }
  }

  private forgetAll(gen: number): void {
    this.apply(gen, null);
  }

  private apply(gen: number, range: Range): void {
    for (const l of this.listeners) l.invalidate(range);
    this.history.push({ gen, range });
    if (this.history.length > HISTORY) this.droppedThrough = this.history.splice(0, this.history.length - HISTORY).at(-1)!.gen;
  }
}

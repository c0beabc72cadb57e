import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BufferReplay } from './buffer-replay.js';
import { REASON_DB_REFUSED, REASON_DB_TIMEOUT } from './pg-event-store.js';
import type { ResilientStoreOptions } from './resilient-store.js';
import { type SaveOutcome, type StoredEvent, StorageError } from './types.js';

export interface ReplayCounts {
  stored: number;
  duplicate: number;
  refused: number;
}

/** What a finished replay reports: events replayed and how each ended, and how long it took. */
export type ReplaySummary = { replayed: number; replayMs: number } & ReplayCounts;

export type JournalReplayOptions = Pick<
  ResilientStoreOptions,
  'pg' | 'journal' | 'buffer' | 'cacheProbe' | 'dbProbe' | 'metrics' | 'logger' | 'replayBatchSize' | 'dataDir' | 'verifier' | 'quarantine' | 'maxEntryBytes'
>;

/** What the replay needs of its store (ResilientStore), which owns the mode and the schema. */
export interface ReplayHost {
  inNormalMode(): boolean;
  /** Whether PostgreSQL can be asked at all right now. */
  databaseReachable(): boolean;
  /** Whether the migrations have run (at start-up, or by an earlier replay). */
  migrated(): boolean;
  /** Runs the migrations a start-up without PostgreSQL skipped; false (the error noted) while they still fail. */
  migrateLate(): Promise<boolean>;
  /** Counts a PostgreSQL error; an outage kind flips the probe. */
  noteDbError(err: StorageError): void;
  /** Journal and write buffer are replayed: back to normal mode. */
  recovered(summary: ReplaySummary): void;
}

/**
 * Replays what was journaled while PostgreSQL was away: in journal order, a batch at a time, through the normal save
 * path (kind rules, ON CONFLICT DO NOTHING), then the Redis write buffer's events the journal does not hold. A failed
 * step is retried with backoff; events refused at replay are logged, counted and recorded in replay-refused.jsonl.
 */
export class JournalReplay {
  readonly lastReplay: { events: number; stored: number; duplicate: number; refused: number; ms: number; at: string } = {
    events: 0, stored: 0, duplicate: 0, refused: 0, ms: 0, at: '',
  };
  replayedTotal = 0;
  refusedTotal = 0;
  private draining: Promise<void> | null = null;
  private kickAgain = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 250;
  private closed = false;
  private readonly log: Logger;
  private readonly bufferReplay: BufferReplay | null;

  constructor(
    private readonly o: JournalReplayOptions,
    private readonly host: ReplayHost,
  ) {
    this.log = o.logger;
    this.bufferReplay = o.buffer
      ? new BufferReplay({ buffer: o.buffer, verifier: o.verifier, quarantine: o.quarantine, pageSize: o.replayBatchSize, maxEntryBytes: o.maxEntryBytes })
      : null;
  }

  get running(): boolean {
    return this.draining !== null;
  }

  private get cacheUp(): boolean {
    return this.o.cacheProbe.current === 'up';
  }

  /**
   * A replay that ran while Redis was down could not read the write buffer, so copies pushed just before Redis went
   * away are still there (already replayed from the journal, or the only copy if the journal was lost). When Redis is
   * back in normal mode, they are checked and replayed like at the end of any replay, then trimmed.
   */
  sweepBuffer(): void {
    if (this.closed || this.draining || !this.host.inNormalMode() || !this.host.databaseReachable() || !this.o.buffer) return;
    const counts: ReplayCounts = { stored: 0, duplicate: 0, refused: 0 };
    this.draining = this.replayBuffer(counts)
      .then(() => {
        const events = counts.stored + counts.duplicate + counts.refused;
        if (events > 0) this.log.info({ ...counts }, 'write buffer swept after Redis came back');
      })
      .catch((err: unknown) => {
        if (err instanceof StorageError) this.host.noteDbError(err);
        this.log.warn({ err }, 'write buffer sweep failed; the buffer is kept for the next replay');
      })
      .finally(() => {
        this.draining = null;
        if (this.kickAgain) {
          this.kickAgain = false;
          this.kick();
        }
      });
  }

  /**
   * Starts a replay if there is something to replay and PostgreSQL is up. After a failed replay step the next try
   * waits for its backoff; only `fresh` news (PostgreSQL seen up again) cuts the wait short.
   */
  kick(fresh = false): void {
    if (this.draining) {
      // Something was queued after the running replay looked: look again when it ends.
      this.kickAgain = true;
      return;
    }
    if (this.retryTimer !== undefined) {
      if (!fresh) return;
      this.backoffMs = 250;
    }
    if (this.closed || this.host.inNormalMode() || this.o.dbProbe.current !== 'up') return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.draining = this.drain()
      .catch((err: unknown) => {
        this.log.error({ err }, 'replay stopped by an unexpected error; retrying');
        this.retryLater();
      })
      .finally(() => {
        this.draining = null;
        if (this.kickAgain) {
          this.kickAgain = false;
          this.kick();
        }
      });
  }

  /** No further replay; waits for a running one (what is left in the journal is replayed at the next start). */
  async stop(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.draining;
  }

  private retryLater(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
  }

  private async drain(): Promise<void> {
    const started = performance.now();
    const counts: ReplayCounts = { stored: 0, duplicate: 0, refused: 0 };
    const { journal } = this.o;
    if (!this.host.migrated() && !(await this.host.migrateLate())) {
      this.retryLater();
      return;
    }
    const initial = journal.pendingCount;
    if (initial > 0) this.log.info({ events: initial }, 'replaying the journal into PostgreSQL');
    while (!this.closed) {
      if (this.o.dbProbe.current !== 'up') return; // the probe's recovery starts the next replay
      const batch = journal.nextBatch(this.o.replayBatchSize);
      if (batch.length === 0) {
        if (journal.busy) {
          await journal.settle();
          continue;
        }
        try {
          await this.replayBuffer(counts);
        } catch (err) {
          if (!(err instanceof StorageError)) throw err;
          this.host.noteDbError(err);
          this.log.warn({ err, code: err.code }, 'replay of the Redis write buffer failed; will retry');
          this.retryLater();
          return;
        }
        if (!journal.drained) continue;
        this.finish(counts, started);
        try {
          await journal.truncateIfDrained();
        } catch (err) {
          // The replayed records stay on disk and are replayed again (idempotently) after a restart.
          this.o.metrics.journalErrors.inc({ code: 'journal-io' });
          this.log.error({ err, path: journal.path }, 'journal: could not truncate after replay');
        }
        return;
      }
      let outcomes: SaveOutcome[];
      try {
        outcomes = await this.replayItems(batch);
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
        this.host.noteDbError(err);
        this.log.warn({ err, code: err.code, pending: journal.pendingCount }, 'replay batch failed; will retry');
        this.retryLater();
        return;
      }
      this.tally(batch, outcomes, counts);
      journal.markReplayed(batch.length);
    }
  }

  private replayItems(items: Array<{ event: StoredEvent['event']; raw: string }>): Promise<SaveOutcome[]> {
    // Concurrent saves join the store's group-commit batches in this order (its queue is FIFO).
    return Promise.all(items.map((e) => this.o.pg.save({ event: e.event, raw: e.raw })));
  }

  private tally(items: Array<{ event: StoredEvent['event']; raw: string }>, outcomes: SaveOutcome[], counts: ReplayCounts): void {
    const refusedLines: string[] = [];
    outcomes.forEach((outcome, i) => {
      const ev = items[i]!.event;
      if (outcome.status === 'rejected') {
        counts.refused++;
        this.refusedTotal++;
        this.o.metrics.replayRefused.inc();
        // Refused by the database itself (not by a kind rule): keep the event, so an operator can submit it again.
        const byDatabase = outcome.reason === REASON_DB_REFUSED || outcome.reason === REASON_DB_TIMEOUT;
        const keep = byDatabase ? { raw: items[i]!.raw } : {};
        this.log.warn(
          { id: ev.id, kind: ev.kind, reason: outcome.reason },
          byDatabase ? 'replay: event accepted while degraded was refused by the database (kept in replay-refused.jsonl)' : 'replay: event accepted while degraded was refused by a kind rule',
        );
        refusedLines.push(JSON.stringify({ id: ev.id, kind: ev.kind, reason: outcome.reason, at: new Date().toISOString(), ...keep }) + '\n');
      } else {
        counts[outcome.status]++;
      }
      this.o.metrics.replayed.inc({ outcome: outcome.status === 'rejected' ? 'refused' : outcome.status });
    });
    this.replayedTotal += outcomes.length;
    this.backoffMs = 250;
    if (refusedLines.length > 0) {
      appendFile(join(this.o.dataDir, 'replay-refused.jsonl'), refusedLines.join('')).catch((err: unknown) =>
        this.log.error({ err }, 'could not record events refused at replay'),
      );
    }
  }

  /** Events in the Redis write buffer that the journal does not hold (its disk was lost, say), validated, replayed, trimmed. */
  private async replayBuffer(counts: ReplayCounts): Promise<void> {
    if (!this.bufferReplay || !this.cacheUp) return;
    try {
      await this.bufferReplay.drain(
        (id) => this.o.journal.has(id),
        async (missing) => {
          this.log.warn({ events: missing.length }, 'replaying events found only in the Redis write buffer');
          this.tally(missing, await this.replayItems(missing), counts);
        },
      );
    } catch (err) {
      if (err instanceof StorageError) throw err;
      this.o.metrics.bufferErrors.inc();
      this.log.warn({ err }, 'Redis write buffer not drained; it is kept for the next replay');
    }
  }

  private finish(counts: ReplayCounts, started: number): void {
    const ms = Math.round(performance.now() - started);
    const events = counts.stored + counts.duplicate + counts.refused;
    Object.assign(this.lastReplay, { events, ...counts, ms, at: new Date().toISOString() });
    this.host.recovered({ replayed: events, ...counts, replayMs: ms });
  }
}

import type { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { RedisQuarantine } from '../cache/entry-check.js';
import type { RedisWriteBuffer } from '../cache/redis-write-buffer.js';
import type { SignatureVerifier } from '../crypto/types.js';
import type { StorageFaultMetrics } from '../degraded/metrics.js';
import { mergeForFilters } from '../degraded/merge.js';
import { ModeClock } from '../degraded/mode-clock.js';
import { DEPENDENCY_DOWN, type DependencyProbe } from '../health/dependency-probe.js';
import type { Filter } from '../nostr/filter.js';
import type { Journal } from './journal.js';
import { JournalReplay, type ReplaySummary } from './journal-replay.js';
import type { PgEventStore } from './pg-event-store.js';
import { type EventStore, type IdState, type SaveOutcome, type StoredEvent, StorageError } from './types.js';

export type StorageMode = 'normal' | 'degraded';

/** StorageError codes that mean PostgreSQL itself is unreachable or refusing work: flip the probe at once. */
const OUTAGE_CODES = new Set(['connection', 'admin-shutdown', 'unavailable', 'timeout']);

export interface ResilientStoreOptions {
  pg: PgEventStore;
  journal: Journal;
  /** Second copy of degraded writes in Redis (null: journal only). */
  buffer: RedisWriteBuffer | null;
  /** Redis's probe: whether the write buffer can be used, and to stop waiting for it when it goes down. */
  cacheProbe: DependencyProbe;
  /** Resolves true once Redis is connected (false if it is not within a short wait): the start-up buffer check needs it. */
  cacheReady: () => Promise<boolean>;
  dbProbe: DependencyProbe;
  metrics: StorageFaultMetrics;
  /** The relay's `relay_db_errors_total`. */
  dbErrors: Counter;
  logger: Logger;
  /** Events handed to PostgreSQL per replay step. */
  replayBatchSize: number;
  /** How long a duplicate lookup may wait for PostgreSQL before the pipeline goes on without it. */
  lookupTimeoutMs: number;
  /** How long a degraded save waits for the Redis copy before acknowledging on the journal alone. */
  bufferTimeoutMs: number;
  /** Where refused-at-replay events are recorded (JSON lines). */
  dataDir: string;
  /** Signatures of what comes back from the Redis write buffer are checked like a client's. */
  verifier: SignatureVerifier;
  /** Where bad write-buffer entries go (logged, counted, kept in a bounded list). */
  quarantine: RedisQuarantine;
  /** Longest write-buffer entry read back (longer ones are quarantined unread). */
  maxEntryBytes: number;
}

/**
 * The EventStore the relay uses: PostgreSQL while it is healthy, the local journal (plus the Redis write buffer)
 * while it is not. Normal mode writes straight to PostgreSQL; a save that fails with an infrastructure error, or is
 * still waiting when the probe declares PostgreSQL down, is journaled instead and still answered `stored` once
 * fsync'd. Degraded mode (PostgreSQL down, or journal not yet replayed) journals every save, so queued events are
 * never overtaken. When the probe sees PostgreSQL again, the journal is replayed in order through the normal save
 * path (kind rules, ON CONFLICT DO NOTHING; journal-replay.ts), and the mode flips back once it is empty.
 */
export class ResilientStore implements EventStore {
  readonly clock = new ModeClock<StorageMode>('normal', ['normal', 'degraded']);
  private migrated = false;
  private outageStarted = 0;
  private closed = false;
  private readonly log: Logger;
  private readonly replay: JournalReplay;

  constructor(private readonly o: ResilientStoreOptions) {
    this.log = o.logger;
    this.replay = new JournalReplay(o, {
      inNormalMode: () => this.mode === 'normal',
      databaseReachable: () => this.databaseReachable,
      migrated: () => this.migrated,
      migrateLate: () => this.migrateLate(),
      noteDbError: (err) => this.noteDbError(err),
      recovered: (summary) => this.recovered(summary),
    });
    o.dbProbe.onChange((state) => {
      if (state === 'down') this.enterDegraded('database unavailable');
      else this.kick(true);
    });
    o.cacheProbe.onChange((state) => {
      if (state === 'up') this.replay.sweepBuffer();
    });
  }

  get mode(): StorageMode {
    return this.clock.current;
  }

  private get cacheUp(): boolean {
    return this.o.cacheProbe.current === 'up';
  }

  get replaying(): boolean {
    return this.replay.running;
  }

  get lastReplay(): JournalReplay['lastReplay'] {
    return this.replay.lastReplay;
  }

  get replayedTotal(): number {
    return this.replay.replayedTotal;
  }

  get refusedTotal(): number {
    return this.replay.refusedTotal;
  }

  /** Opens the journal (recovering what a previous run left) and migrates; PostgreSQL being down is not fatal. */
  async migrate(): Promise<void> {
    const report = await this.o.journal.open();
    if (report.records > 0) this.enterDegraded('journal from a previous run');
    try {
      await this.o.pg.migrate();
      this.migrated = true;
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      this.noteDbError(err, true);
      this.log.error({ err, code: err.code }, 'PostgreSQL unavailable at start-up; starting in degraded mode (migrations run on recovery)');
      this.enterDegraded('database unavailable at start-up');
    }
    if (this.mode === 'normal' && (await this.o.cacheReady()) && (await this.bufferLength()) > 0) this.enterDegraded('Redis write buffer holds events from a previous run');
    this.kick();
  }

  // ---------------------------------------------------------------- writes

  async save(item: StoredEvent): Promise<SaveOutcome> {
    if (this.closed) throw new StorageError('store is closed', 'closed');
    if (this.mode === 'normal') {
      try {
        const result = await this.o.dbProbe.raceDown(this.o.pg.save(item));
        if (result !== DEPENDENCY_DOWN) return result;
        // The write may still commit later; replay then finds it stored (duplicate), never twice.
        this.o.metrics.savesDiverted.inc({ code: 'outage' });
      } catch (err) {
        if (!(err instanceof StorageError) || err.code === 'closed') throw err;
        this.noteDbError(err);
        this.o.metrics.savesDiverted.inc({ code: err.code });
        this.enterDegraded(`save failed (${err.code})`);
      }
    }
    return this.saveToJournal(item);
  }

  private async saveToJournal(item: StoredEvent): Promise<SaveOutcome> {
    const { journal, buffer } = this.o;
    if (journal.has(item.event.id)) return { status: 'duplicate' };
    this.enterDegraded('events queued for replay');
    // Rejects with journal-full / disk-full: the pipeline then answers OK false, never a false OK true.
    await journal.append(item);
    this.o.metrics.journaled.inc();
    if (buffer && this.cacheUp) {
      try {
        const res = await this.o.cacheProbe.raceDown(buffer.push(item), this.o.bufferTimeoutMs);
        if (res === DEPENDENCY_DOWN) this.o.metrics.bufferErrors.inc();
      } catch (err) {
        this.o.metrics.bufferErrors.inc();
        this.log.debug({ err }, 'write buffer push failed (the journal holds the event)');
      }
    }
    this.kick();
    return { status: 'stored' };
  }

  /** Counts the error; outage-kind errors (or `down`) also flip the probe, whose failure listener does the counting then. */
  private noteDbError(err: StorageError, down = false): void {
    if (down || OUTAGE_CODES.has(err.code)) this.o.dbProbe.reportFailure(err);
    else this.o.dbErrors.inc({ code: err.code });
  }

  private enterDegraded(reason: string): void {
    if (this.clock.current === 'degraded') return;
    this.clock.set('degraded');
    this.outageStarted = Date.now();
    this.log.warn({ reason }, 'entering degraded mode: events are journaled until PostgreSQL is back');
  }

  // ---------------------------------------------------------------- replay

  /** Starts a replay if there is something to replay and PostgreSQL is up (journal-replay.ts). */
  kick(fresh = false): void {
    this.replay.kick(fresh);
  }

  private async migrateLate(): Promise<boolean> {
    try {
      await this.o.pg.migrate();
      this.migrated = true;
      this.log.info('migrations applied after PostgreSQL came back');
      return true;
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      this.noteDbError(err);
      this.log.warn({ err, code: err.code }, 'migrations still failing; will retry');
      return false;
    }
  }

  private recovered(summary: ReplaySummary): void {
    const outageMs = Date.now() - this.outageStarted;
    this.clock.set('normal');
    this.log.info({ ...summary, outageMs }, 'database recovered');
  }

  private async bufferLength(): Promise<number> {
    if (!this.o.buffer || !this.cacheUp) return 0;
    try {
      const n = await this.o.cacheProbe.raceDown(this.o.buffer.length(), this.o.bufferTimeoutMs);
      return n === DEPENDENCY_DOWN ? 0 : n;
    } catch (err) {
      this.log.warn({ err }, 'could not read the Redis write buffer length');
      return 0;
    }
  }

  // ---------------------------------------------------------------- reads

  /** Journal first (it may hold what PostgreSQL does not), then PostgreSQL unless it is known to be down. */
  async lookup(ids: string[]): Promise<Map<string, IdState>> {
    const out = new Map<string, IdState>();
    const rest = ids.filter((id) => {
      if (!this.o.journal.has(id)) return true;
      out.set(id, 'stored');
      return false;
    });
    if (rest.length === 0) return out;
    // Degraded dedup: Redis marks (asked by the pipeline first) and the journal; a resubmission of something only
    // PostgreSQL knows is journaled again and found to be a duplicate at replay.
    if (this.o.dbProbe.current === 'down' || !this.migrated) return out;
    let found: Map<string, IdState> | typeof DEPENDENCY_DOWN;
    try {
      found = await this.o.dbProbe.raceDown(this.o.pg.lookup(rest), this.o.lookupTimeoutMs);
    } catch (err) {
      if (err instanceof StorageError) this.noteDbError(err);
      throw err;
    }
    if (found === DEPENDENCY_DOWN) {
      throw new StorageError(`id lookup took longer than ${this.o.lookupTimeoutMs} ms`, 'lookup-timeout');
    }
    for (const [id, state] of found) out.set(id, state);
    return out;
  }

  /** Events of the journal that match (what PostgreSQL does not have yet). */
  journalMatches(filters: Filter[]): StoredEvent[] {
    if (this.o.journal.pendingCount === 0) return [];
    return mergeForFilters(filters, [this.o.journal.pending().map((e) => ({ event: e.event, raw: e.raw }))]);
  }

  /** Whether PostgreSQL can be asked at all right now. */
  get databaseReachable(): boolean {
    return this.migrated && this.o.dbProbe.current === 'up';
  }

  /** PostgreSQL's answer, merged with the journal's while replay is pending. Throws StorageError when PostgreSQL is down. */
  async query(filters: Filter[], signal?: AbortSignal): Promise<StoredEvent[]> {
    if (!this.databaseReachable) throw new StorageError('PostgreSQL is unavailable (degraded mode)', 'unavailable');
    let stored: StoredEvent[];
    try {
      stored = await this.o.pg.query(filters, signal);
    } catch (err) {
      if (err instanceof StorageError && err.code !== 'aborted') this.noteDbError(err);
      throw err;
    }
    if (this.mode === 'normal') return stored;
    return mergeForFilters(filters, [this.journalMatches(filters), stored]);
  }

  /** PostgreSQL's pages in normal mode; while a replay is pending, the answer merged with the journal's, as one page. */
  async *stream(filters: Filter[], signal?: AbortSignal): AsyncGenerator<Array<{ id: string; raw: string }>> {
    if (this.mode !== 'normal') {
      const merged = await this.query(filters, signal);
      if (merged.length > 0) yield merged.map((s) => ({ id: s.event.id, raw: s.raw }));
      return;
    }
    if (!this.databaseReachable) throw new StorageError('PostgreSQL is unavailable (degraded mode)', 'unavailable');
    try {
      yield* this.o.pg.stream(filters, signal);
    } catch (err) {
      if (err instanceof StorageError && err.code !== 'aborted') this.noteDbError(err);
      throw err;
    }
  }

  count(): Promise<number> {
    return this.o.pg.count();
  }

  ping(): Promise<void> {
    return this.o.pg.ping();
  }

  /** Waits for a running replay, then closes PostgreSQL and the journal (what is left in it is replayed at the next start). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.replay.stop();
    await this.o.journal.settle();
    await this.o.pg.close();
    await this.o.journal.close();
  }
}

import type pg from 'pg';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/schema.js';
import type { Filter } from '../nostr/filter.js';
import { runMigrations } from './migrations.js';
import { ProbeConnection, createPool } from './pg-connections.js';
import { toStorageError } from './pg-errors.js';
import { GroupCommit, type PoisonKind, type StoreStats } from './pg-group-commit.js';
import { FilterReads, IdLookups } from './pg-reads.js';
import { PoolGate } from './pool-gate.js';
import { streamFilters, type FilterStreamOptions, type RawEvent } from './pg-stream.js';
import { type EventStore, type IdState, type SaveOutcome, type StoredEvent, StorageError } from './types.js';

export { toStorageError } from './pg-errors.js';
export { REASON_DELETED, REASON_NEWER, WRITE_LOCK } from './pg-write-rules.js';
export { REASON_DB_REFUSED, REASON_DB_TIMEOUT, type PoisonKind, type StoreStats } from './pg-group-commit.js';

/** The RelayConfig keys the store uses (a whole RelayConfig fits). */
export type PgStoreConfig = Pick<RelayConfig, 'databaseUrl' | 'dbPoolSize' | 'dbStatementTimeoutMs' | 'dbConnectTimeoutMs' | 'dbBatchSize'> &
  Partial<Pick<RelayConfig, 'dbWritePoolSize' | 'dbReadQueueSize'>>;

export interface PgEventStoreExtras {
  /** Cap on rows one filter may return when it carries no (or a larger) limit. Default 5000. */
  maxQueryLimit?: number;
  /** Default 500 ms. */
  pingTimeoutMs?: number;
  /** Clock in seconds; tests move it to check expiration. */
  now?: () => number;
  /**
   * Write transactions in flight at once (default 2). A second one overlaps the first's commit flush and
   * round trips; correctness between them rests on the same advisory locks that order several relays.
   */
  maxConcurrentBatches?: number;
}

/**
 * PostgreSQL EventStore. Three separate ways in, so that one kind of load cannot starve another:
 * - the read pool (`db_pool_size`, behind an abort-aware bounded queue) serves REQ queries, counts and admin reads;
 * - the write pool (`db_write_pool_size`) carries group-commit transactions and the duplicate check's id lookups;
 * - the health probe has its own connection, so a saturated pool never looks like an outage.
 */
export class PgEventStore implements EventStore {
  /** The read pool (REQ queries, count, migrations, integrity checks). */
  readonly pool: pg.Pool;
  /** The write pool (group commit, id lookups). */
  readonly writePool: pg.Pool;
  readonly readGate: PoolGate;
  private readonly writes: GroupCommit;
  private readonly lookups: IdLookups;
  private readonly reads: FilterReads;
  private readonly streamOptions: FilterStreamOptions;
  private readonly probe: ProbeConnection;
  private readonly log: Logger;
  private closed = false;

  constructor(opts: PgStoreConfig, logger: Logger, extras: PgEventStoreExtras = {}) {
    this.log = logger;
    const now = extras.now ?? (() => Math.floor(Date.now() / 1000));
    const base = { databaseUrl: opts.databaseUrl, connectTimeoutMs: opts.dbConnectTimeoutMs, statementTimeoutMs: opts.dbStatementTimeoutMs };
    const readSize = opts.dbPoolSize;
    const writeSize = Math.max(2, opts.dbWritePoolSize ?? 4);
    // One connection past the gated ones, for counts, migrations and integrity checks, which do not queue at the gate.
    this.pool = createPool({ ...base, max: readSize + 1, applicationName: 'nostr-relay-reader' }, logger);
    this.writePool = createPool({ ...base, max: writeSize, applicationName: 'nostr-relay-store' }, logger);
    this.readGate = new PoolGate(readSize, opts.dbReadQueueSize ?? 1000, opts.dbConnectTimeoutMs);
    this.writes = new GroupCommit({
      pool: this.writePool,
      log: logger,
      batchSize: Math.max(1, opts.dbBatchSize),
      // Leave a write connection for the id lookups.
      maxInFlight: Math.max(1, Math.min(extras.maxConcurrentBatches ?? 2, writeSize - 1)),
      now,
      onPoison: (kind, id) => this.poisonListener?.(kind, id),
    });
    this.lookups = new IdLookups(this.writePool);
    this.reads = new FilterReads({ pool: this.pool, gate: this.readGate, log: logger, maxQueryLimit: extras.maxQueryLimit ?? 5000, now });
    this.streamOptions = { pool: this.pool, gate: this.readGate, log: logger, maxQueryLimit: extras.maxQueryLimit ?? 5000, now };
    this.probe = new ProbeConnection(opts.databaseUrl, extras.pingTimeoutMs ?? 500, logger);
  }

  /** Told about every event the database refused on its own (data error, or a statement timeout bisected to it). */
  poisonListener: ((kind: PoisonKind, id: string) => void) | undefined;

  get stats(): StoreStats {
    return this.writes.stats;
  }

  async migrate(): Promise<void> {
    try {
      await runMigrations(this.pool, this.log);
    } catch (err) {
      throw toStorageError(err, 'migration failed');
    }
  }

  save(item: StoredEvent): Promise<SaveOutcome> {
    if (this.closed) return Promise.reject(new StorageError('store is closed', 'closed'));
    return this.writes.save(item);
  }

  lookup(ids: string[]): Promise<Map<string, IdState>> {
    return this.lookups.lookup(ids);
  }

  query(filters: Filter[], signal?: AbortSignal): Promise<StoredEvent[]> {
    return this.reads.query(filters, signal);
  }

  stream(filters: Filter[], signal?: AbortSignal): AsyncIterable<RawEvent[]> {
    if (this.closed) throw new StorageError('store is closed', 'closed');
    return streamFilters(this.streamOptions, filters, signal);
  }

  async count(): Promise<number> {
    try {
      const res = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM events');
      return Number(res.rows[0]!.n);
    } catch (err) {
      throw toStorageError(err, 'count failed');
    }
  }

  /** `SELECT 1` on the probe's own connection (never queued behind pooled work). */
  ping(): Promise<void> {
    return this.probe.ping();
  }

  /** Stops taking writes, waits for queued ones to commit (or fail), then closes the pools. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.drain();
    await this.probe.close();
    await Promise.all([this.pool.end(), this.writePool.end()]);
  }
}

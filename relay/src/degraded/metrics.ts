import { Counter, Gauge, type Registry } from 'prom-client';

export interface StorageFaultSample {
  modeSeconds: Record<string, number>;
  cacheSeconds: Record<string, number>;
  journalBytes: number;
  queueDepth: number;
  degraded: boolean;
  cacheFallback: boolean;
  /** The journal refuses appends (a failed write could not be cut back). */
  journalFailed: boolean;
  /** Per pool: callers waiting for a connection and connections held. */
  pools: Record<string, { waiting: number; inUse: number }>;
}

/** Collectors of the storage-fault layer (degraded mode, journal, replay, cache fallback), on the relay's registry. */
export class StorageFaultMetrics {
  readonly degraded: Gauge;
  readonly cacheFallback: Gauge;
  readonly modeSeconds: Gauge;
  readonly journalBytes: Gauge;
  readonly queueDepth: Gauge;
  readonly journaled: Counter;
  readonly replayed: Counter;
  readonly replayRefused: Counter;
  readonly journalErrors: Counter;
  readonly bufferErrors: Counter;
  readonly cacheBypassed: Counter;
  readonly savesDiverted: Counter;
  readonly redisPoisoned: Counter;
  readonly dbRefusedEvents: Counter;
  readonly poolWaiting: Gauge;
  readonly poolInUse: Gauge;
  readonly journalFailedClosed: Gauge;

  constructor(registry: Registry, sample: () => StorageFaultSample) {
    const registers = [registry];
    this.degraded = new Gauge({
      name: 'relay_storage_degraded',
      help: '1 while the relay runs in degraded mode (PostgreSQL down or journal not yet replayed)',
      registers,
      collect() {
        this.set(sample().degraded ? 1 : 0);
      },
    });
    this.cacheFallback = new Gauge({
      name: 'relay_cache_fallback',
      help: '1 while Redis is bypassed (cache fallback mode)',
      registers,
      collect() {
        this.set(sample().cacheFallback ? 1 : 0);
      },
    });
    this.modeSeconds = new Gauge({
      name: 'relay_mode_seconds',
      help: 'Seconds spent in each mode since start (storage: normal/degraded, cache: ok/fallback)',
      labelNames: ['dependency', 'mode'],
      registers,
      collect() {
        const s = sample();
        for (const [mode, v] of Object.entries(s.modeSeconds)) this.set({ dependency: 'database', mode }, v);
        for (const [mode, v] of Object.entries(s.cacheSeconds)) this.set({ dependency: 'cache', mode }, v);
      },
    });
    this.journalBytes = new Gauge({
      name: 'relay_journal_bytes',
      help: 'Size of the local journal file',
      registers,
      collect() {
        this.set(sample().journalBytes);
      },
    });
    this.queueDepth = new Gauge({
      name: 'relay_replay_queue_depth',
      help: 'Events accepted while degraded that are not yet committed to PostgreSQL',
      registers,
      collect() {
        this.set(sample().queueDepth);
      },
    });
    this.journaled = new Counter({ name: 'relay_journal_appends_total', help: 'Events acknowledged from the journal (degraded mode)', registers });
    this.replayed = new Counter({ name: 'relay_replayed_events_total', help: 'Journal events replayed into PostgreSQL, by outcome (stored, duplicate, refused)', labelNames: ['outcome'], registers });
    this.replayRefused = new Counter({ name: 'relay_replay_refused_total', help: 'Replayed events refused by a kind rule (logged with id and reason)', registers });
    this.journalErrors = new Counter({ name: 'relay_journal_errors_total', help: 'Journal failures, by code (journal-full, disk-full, journal-io, corrupt-record, failed-closed, journal-failed)', labelNames: ['code'], registers });
    this.bufferErrors = new Counter({ name: 'relay_write_buffer_errors_total', help: 'Failed pushes to the Redis write buffer (the journal copy still holds the event)', registers });
    this.cacheBypassed = new Counter({ name: 'relay_cache_bypassed_total', help: 'Cache calls skipped while Redis is in fallback mode, by operation', labelNames: ['op'], registers });
    this.redisPoisoned = new Counter({
      name: 'relay_redis_poisoned_total',
      help: 'Bad values read back from Redis and quarantined instead of stored or served, by source (write-buffer, cache, dedup-mark) and reason (size, json, shape, id, signature, mark)',
      labelNames: ['source', 'reason'],
      registers,
    });
    this.dbRefusedEvents = new Counter({
      name: 'relay_db_refused_events_total',
      help: 'Events a write batch was bisected down to and the database refused on their own, by kind (data-error, statement-timeout)',
      labelNames: ['kind'],
      registers,
    });
    this.journalFailedClosed = new Gauge({
      name: 'relay_journal_failed_closed',
      help: '1 while the journal refuses appends because a failed write could not be cut back (see docs/STORAGE-FAULTS.md)',
      registers,
      collect() {
        this.set(sample().journalFailed ? 1 : 0);
      },
    });
    this.poolWaiting = new Gauge({
      name: 'relay_db_pool_waiting',
      help: 'Callers waiting for a PostgreSQL connection, by pool (read)',
      labelNames: ['pool'],
      registers,
      collect() {
        for (const [pool, v] of Object.entries(sample().pools)) this.set({ pool }, v.waiting);
      },
    });
    this.poolInUse = new Gauge({
      name: 'relay_db_pool_in_use',
      help: 'PostgreSQL connections held, by pool (read, write)',
      labelNames: ['pool'],
      registers,
      collect() {
        for (const [pool, v] of Object.entries(sample().pools)) this.set({ pool }, v.inUse);
      },
    });
    this.savesDiverted = new Counter({ name: 'relay_saves_diverted_total', help: 'Saves PostgreSQL failed (or outlived an outage) that went to the journal instead, by error code', labelNames: ['code'], registers });
  }
}

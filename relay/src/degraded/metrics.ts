import { Counter, Gauge, type Registry } from 'prom-client';

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

  constructor(registry: Registry, sample: () => { modeSeconds: Record<string, number>; cacheSeconds: Record<string, number>; journalBytes: number; queueDepth: number; degraded: boolean; cacheFallback: boolean }) {
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
    this.journalErrors = new Counter({ name: 'relay_journal_errors_total', help: 'Journal failures, by code (journal-full, disk-full, journal-io, corrupt-record)', labelNames: ['code'], registers });
    this.bufferErrors = new Counter({ name: 'relay_write_buffer_errors_total', help: 'Failed pushes to the Redis write buffer (the journal copy still holds the event)', registers });
    this.cacheBypassed = new Counter({ name: 'relay_cache_bypassed_total', help: 'Cache calls skipped while Redis is in fallback mode, by operation', labelNames: ['op'], registers });
    this.savesDiverted = new Counter({ name: 'relay_saves_diverted_total', help: 'Saves PostgreSQL failed (or outlived an outage) that went to the journal instead, by error code', labelNames: ['code'], registers });
  }
}

import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AdminServer } from '../admin/admin-server.js';
import { HttpError } from '../admin/admin-server.js';
import type { RedisEventCache } from '../cache/redis-cache.js';
import { RedisWriteBuffer } from '../cache/redis-write-buffer.js';
import { ResilientCache } from '../cache/resilient-cache.js';
import type { RelayConfig } from '../config/schema.js';
import type { SignatureVerifier } from '../crypto/types.js';
import type { DependencyProbe } from '../health/dependency-probe.js';
import type { RelayMetrics } from '../metrics/registry.js';
import type { EventReader } from '../server/reader.js';
import { Journal } from '../storage/journal.js';
import type { PgEventStore } from '../storage/pg-event-store.js';
import { ResilientStore } from '../storage/resilient-store.js';
import { StorageError } from '../storage/types.js';
import { verifyIntegrity } from './integrity.js';
import { StorageFaultMetrics } from './metrics.js';
import { resilientReader } from './reader.js';

export interface StorageFaultsDeps {
  config: Pick<RelayConfig, 'dataDir' | 'redisKeyPrefix' | 'journalMaxBytes' | 'replayBatchSize' | 'dbConnectTimeoutMs'>;
  pg: PgEventStore;
  redis: RedisEventCache;
  dbProbe: DependencyProbe;
  cacheProbe: DependencyProbe;
  metrics: RelayMetrics;
  logger: Logger;
}

/**
 * Degraded mode and cache fallback, assembled: the journal, the Redis write buffer, the resilient store, cache and
 * reader the relay runs on, their metrics, the status fields and GET /admin/events/verify-integrity.
 */
export class StorageFaults {
  readonly journal: Journal;
  readonly buffer: RedisWriteBuffer;
  readonly store: ResilientStore;
  readonly cache: ResilientCache;
  readonly reader: EventReader;
  readonly faultMetrics: StorageFaultMetrics;

  constructor(private readonly deps: StorageFaultsDeps) {
    const { config, logger, cacheProbe } = deps;
    const log = logger.child({ component: 'degraded' });
    this.faultMetrics = new StorageFaultMetrics(deps.metrics.registry, () => ({
      modeSeconds: this.store.clock.seconds(),
      cacheSeconds: this.cache.clock.seconds(),
      journalBytes: this.journal.bytes,
      queueDepth: this.journal.pendingCount,
      degraded: this.store.mode === 'degraded',
      cacheFallback: this.cache.mode === 'fallback-mode',
    }));
    this.journal = new Journal({
      dir: join(config.dataDir, 'journal'),
      maxBytes: config.journalMaxBytes,
      logger: logger.child({ component: 'journal' }),
      onError: (code) => this.faultMetrics.journalErrors.inc({ code }),
    });
    this.buffer = new RedisWriteBuffer(deps.redis.redis, config.redisKeyPrefix, log);
    this.cache = new ResilientCache(deps.redis, cacheProbe, this.faultMetrics, logger.child({ component: 'cache' }));
    this.store = new ResilientStore({
      pg: deps.pg,
      journal: this.journal,
      buffer: this.buffer,
      cacheProbe,
      cacheReady: () =>
        deps.redis.waitReady(1000).then(
          () => true,
          (err: unknown) => {
            log.warn({ err }, 'Redis not connected at start-up; the write buffer is checked at the next replay');
            return false;
          },
        ),
      dbProbe: deps.dbProbe,
      metrics: this.faultMetrics,
      dbErrors: deps.metrics.dbErrors,
      logger: log,
      replayBatchSize: config.replayBatchSize,
      lookupTimeoutMs: config.dbConnectTimeoutMs,
      bufferTimeoutMs: 1000,
      dataDir: config.dataDir,
    });
    this.reader = resilientReader(this.store, this.cache, log);
    // Failures the probes see count too: during an outage nothing else may be touching the dependency.
    deps.dbProbe.onFailure((err) => deps.metrics.dbErrors.inc({ code: err instanceof StorageError ? err.code : 'timeout' }));
    cacheProbe.onFailure(() => deps.metrics.cacheErrors.inc({ op: 'probe' }));
  }

  /** Fields merged into /admin/status. */
  status(): Record<string, unknown> {
    return {
      storage: {
        mode: this.store.mode,
        modeSince: new Date(this.store.clock.sinceMs).toISOString(),
        replaying: this.store.replaying,
        queueDepth: this.journal.pendingCount,
        journalBytes: this.journal.bytes,
        journalMaxBytes: this.journal.maxBytes,
        replayedEvents: this.store.replayedTotal,
        refusedAtReplay: this.store.refusedTotal,
        lastReplay: this.store.lastReplay,
        secondsInMode: this.store.clock.seconds(),
      },
      cacheMode: {
        mode: this.cache.mode,
        since: new Date(this.cache.clock.sinceMs).toISOString(),
        secondsInMode: this.cache.clock.seconds(),
      },
    };
  }

  registerRoutes(admin: AdminServer, verifier: SignatureVerifier): void {
    admin.route('GET', '/admin/events/verify-integrity', async (req) => {
      const sampleText = req.query.get('sample');
      const sample = sampleText === null ? undefined : Number(sampleText);
      if (sample !== undefined && (!Number.isSafeInteger(sample) || sample < 1)) throw new HttpError(400, 'sample must be a positive integer');
      if (!this.store.databaseReachable) {
        return {
          status: 503,
          body: { ok: false, checked: 0, invalid: 0, duplicates: 0, pending: this.journal.pendingCount, problems: ['PostgreSQL is unavailable (degraded mode)'] },
        };
      }
      return verifyIntegrity(
        {
          pool: this.deps.pg.pool,
          verifier,
          journalPending: () => this.journal.pendingCount,
          bufferPending: async () => {
            if (!this.cache.up) return null;
            try {
              return await this.buffer.length();
            } catch {
              return null; // reported as ok: false, since the buffer could not be checked
            }
          },
          refusedAtReplay: () => this.store.refusedTotal,
        },
        sample,
      );
    });
  }
}

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
import { RedisQuarantine } from '../cache/entry-check.js';
import { NobleVerifier } from '../crypto/noble-verifier.js';
import { verifyIntegrity } from './integrity.js';
import { StorageFaultMetrics } from './metrics.js';
import { resilientReader } from './reader.js';

export interface StorageFaultsDeps {
  config: Pick<RelayConfig, 'dataDir' | 'redisKeyPrefix' | 'journalMaxBytes' | 'replayBatchSize' | 'dbConnectTimeoutMs'> &
    Partial<Pick<RelayConfig, 'redisQuarantineMax' | 'limits'>>;
  /** Checks the signatures of what comes back from Redis (default: the reference verifier on the main thread). */
  verifier?: SignatureVerifier;
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
  readonly quarantine: RedisQuarantine;

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
      journalFailed: this.journal.state.state === 'failed-closed',
      pools: {
        read: { waiting: deps.pg.readGate.waitingCount, inUse: deps.pg.readGate.inUseCount },
        write: { waiting: deps.pg.writePool.waitingCount, inUse: deps.pg.writePool.totalCount - deps.pg.writePool.idleCount },
      },
    }));
    const verifier = deps.verifier ?? new NobleVerifier();
    const maxEntryBytes = config.limits?.maxMessageLength ?? 131072;
    this.quarantine = new RedisQuarantine({
      redis: deps.redis.redis,
      prefix: config.redisKeyPrefix,
      maxEntries: config.redisQuarantineMax ?? 1000,
      counter: this.faultMetrics.redisPoisoned,
      log,
    });
    deps.redis.onPoison = (source, reason, detail, raw, extra) => this.quarantine.note(source, reason, detail, raw, extra);
    deps.redis.maxEntryBytes = maxEntryBytes;
    deps.redis.setMarkKey(loadMarkKey(config.dataDir, log));
    deps.pg.poisonListener = (kind) => this.faultMetrics.dbRefusedEvents.inc({ kind });
    this.journal = new Journal({
      dir: join(config.dataDir, 'journal'),
      maxBytes: config.journalMaxBytes,
      logger: logger.child({ component: 'journal' }),
      onError: (code) => this.faultMetrics.journalErrors.inc({ code }),
    });
    this.buffer = new RedisWriteBuffer(deps.redis.redis, config.redisKeyPrefix);
    this.cache = new ResilientCache(deps.redis, cacheProbe, this.faultMetrics, logger.child({ component: 'cache' }), {
      verifier,
      onBadSignature: (item) => {
        this.quarantine.note('cache', 'signature', 'signature verification failed', item.raw, { id: item.event.id });
        deps.redis.forget([item.event.id]);
      },
    });
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
      verifier,
      quarantine: this.quarantine,
      maxEntryBytes,
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
        journal: this.journal.state,
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

/**
 * The dedup marks' MAC key, `<data_dir>/dedup-mark.key` (created on first start, mode 0600), so marks written before a
 * restart stay valid. If it cannot be read or written, a key for this run only: older marks are then ignored (and
 * dedup asks PostgreSQL), which is always safe.
 */
function loadMarkKey(dataDir: string, log: Logger): Buffer {
  const path = join(dataDir, 'dedup-mark.key');
  try {
    const hex = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
    log.warn({ path }, 'dedup mark key unreadable; replacing it (existing dedup marks are ignored)');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err, path }, 'could not read the dedup mark key');
  }
  const key = randomBytes(32);
  try {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path, key.toString('hex') + '\n', { mode: 0o600 });
  } catch (err) {
    log.warn({ err, path }, 'could not save the dedup mark key; marks last for this run only');
  }
  return key;
}

import type { Logger } from 'pino';
import { AdminServer } from './admin/admin-server.js';
import { registerCoreRoutes } from './admin/core-routes.js';
import type { RelayConfig } from './config/schema.js';
import { createVerifier } from './crypto/create-verifier.js';
import type { SignatureVerifier } from './crypto/types.js';
import { DependencyProbe } from './health/dependency-probe.js';
import { IngestPipeline } from './ingest/pipeline.js';
import { RelayMetrics } from './metrics/registry.js';
import { RedisEventCache } from './cache/redis-cache.js';
import { relayInformation } from './server/nip11.js';
import type { EventReader } from './server/reader.js';
import { RelayServer } from './server/relay-server.js';
import { SubscriptionRegistry } from './server/subscriptions.js';
import { PgEventStore } from './storage/pg-event-store.js';
import { StorageFaults } from './degraded/storage-faults.js';
import type { EventCache, EventStore } from './storage/types.js';
import { VERSION } from './version.js';
import { OpenAccess, type AccessControl } from './security/access-control.js';
import { attachReputation } from './reputation/attach.js';
import { attachPeering } from './peers/attach.js';
import type { PeerManager } from './peers/peer-manager.js';

/** Health probes run this often; a failure is noticed within one interval (the runbook asks for < 1 s). */
const PROBE_INTERVAL_MS = 250;
/** A probe that has not answered in this long counts as failed (interval + timeout stays under 1 s). */
const PROBE_TIMEOUT_MS = 450;

export interface RelayStatus {
  mode: string;
  cache: string;
  database: ReturnType<DependencyProbe['status']>;
  redis: ReturnType<DependencyProbe['status']>;
  uptimeSeconds: number;
  version: string;
  nodeId: string | null;
  ports: { relay: number; admin: number };
  [extra: string]: unknown;
}

/**
 * One relay process: storage, cache, verifier, ingest pipeline, client listener and admin API, wired
 * together. Later layers (degraded mode, peering, reputation) attach to the parts exposed here.
 */
export class Relay {
  readonly metrics = new RelayMetrics();
  readonly subscriptions = new SubscriptionRegistry();
  readonly store: EventStore;
  readonly cache: EventCache;
  readonly verifier: SignatureVerifier;
  readonly pipeline: IngestPipeline;
  readonly server: RelayServer;
  readonly admin: AdminServer;
  readonly dbProbe: DependencyProbe;
  readonly cacheProbe: DependencyProbe;
  readonly log: Logger;
  /** Degraded mode (journal, replay) and cache fallback: owns the store, cache and reader below. */
  readonly storage: StorageFaults;
  reader: EventReader;
  /** Bans of peers and clients; replaced by the reputation layer's persistent ban list. */
  access: AccessControl = new OpenAccess();
  nodeId: string | null = null;
  /** The relay network: peer links, gossip, anti-entropy (relay/src/peers, docs/PEERING.md). */
  readonly peering: PeerManager;
  private readonly startedAt = Date.now();
  private readonly statusContributors: Array<() => Record<string, unknown>> = [];
  private readonly stopHooks: Array<() => Promise<void>> = [];
  ports = { relay: 0, admin: 0 };

  constructor(readonly config: RelayConfig, logger: Logger) {
    this.log = logger;
    const pgStore = new PgEventStore(config, logger.child({ component: 'storage' }));
    const redisCache = new RedisEventCache(config, logger.child({ component: 'cache' }));
    const chosen = createVerifier(config.verifyWorkers, config.verifier);
    this.verifier = chosen.verifier;
    logger.info(
      { verifier: chosen.backend, verifyWorkers: chosen.workers, ...(chosen.fallback ? { fallback: chosen.fallback } : {}) },
      chosen.workers > 0 ? `signature verifier: ${chosen.backend} in ${chosen.workers} worker threads` : `signature verifier: ${chosen.backend} on the main thread`,
    );
    this.dbProbe = new DependencyProbe('database', () => pgStore.ping(), PROBE_INTERVAL_MS, logger.child({ component: 'health' }), PROBE_TIMEOUT_MS);
    this.cacheProbe = new DependencyProbe('cache', () => redisCache.ping(), PROBE_INTERVAL_MS, logger.child({ component: 'health' }), PROBE_TIMEOUT_MS);
    this.storage = new StorageFaults({ config, pg: pgStore, redis: redisCache, verifier: this.verifier, dbProbe: this.dbProbe, cacheProbe: this.cacheProbe, metrics: this.metrics, logger });
    this.store = this.storage.store;
    this.cache = this.storage.cache;
    this.reader = this.storage.reader;
    this.pipeline = new IngestPipeline({
      store: this.store,
      cache: this.cache,
      verifier: this.verifier,
      subscriptions: this.subscriptions,
      metrics: this.metrics,
      limits: config.limits,
      logger,
    });
    this.server = new RelayServer({
      host: config.host,
      port: config.port,
      pipeline: this.pipeline,
      reader: { read: (filters, signal) => this.reader.read(filters, signal) },
      subscriptions: this.subscriptions,
      metrics: this.metrics,
      limits: config.limits,
      logger,
      information: () => relayInformation(config, VERSION, this.nodeId ?? undefined),
      admit: (req) => (this.access.isBanned(req.socket.remoteAddress ?? '') ? 'blocked: this address is banned' : null),
    });
    this.admin = new AdminServer({
      host: config.adminHost,
      port: config.adminPort,
      token: config.adminToken,
      allowedHosts: config.adminAllowedHosts,
      allowedOrigins: config.adminAllowedOrigins,
      registry: this.metrics.registry,
      logger,
    });
    registerCoreRoutes(this.admin, this);
    this.storage.registerRoutes(this.admin, this.verifier);
    this.addStatus(() => this.storage.status());
    this.access = attachReputation(this);
    this.peering = attachPeering(this);
    // A proven peer (full NIP-77 sessions) is a node we hold a peer link to, not merely any key that AUTHed.
    this.server.isNetworkMember = (nodeId) => this.peering.list().some((link) => link.remoteNodeId === nodeId && link.state !== 'banned');
  }

  /** Adds fields to /admin/status (peers, journal, ...). */
  addStatus(contributor: () => Record<string, unknown>): void {
    this.statusContributors.push(contributor);
  }

  /** Runs at shutdown, before storage closes (in reverse order of registration). */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  status(): RelayStatus {
    const base: RelayStatus = {
      mode: this.storage.store.mode,
      cache: this.storage.cache.mode,
      database: this.dbProbe.status(),
      redis: this.cacheProbe.status(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      version: VERSION,
      nodeId: this.nodeId,
      ports: this.ports,
    };
    for (const contribute of this.statusContributors) Object.assign(base, contribute());
    return base;
  }

  /** Error counters for the JSON metrics endpoint. */
  metricSnapshot(): Record<string, unknown> {
    return { ...this.counterTotals };
  }

  private counterTotals: Record<string, number> = {};

  /** Refreshes the counter totals shown by /admin/metrics (prom-client reads are async). */
  async refreshCounters(): Promise<void> {
    const sum = async (metric: { get(): Promise<{ values: Array<{ value: number }> }> }) =>
      (await metric.get()).values.reduce((total, v) => total + v.value, 0);
    this.counterTotals = {
      eventsReceived: await sum(this.metrics.eventsReceived),
      eventsAccepted: await sum(this.metrics.eventsAccepted),
      eventsRejected: await sum(this.metrics.eventsRejected),
      duplicates: await sum(this.metrics.duplicates),
      signatureFailures: await sum(this.metrics.signatureFailures),
      dbErrors: await sum(this.metrics.dbErrors),
      cacheErrors: await sum(this.metrics.cacheErrors),
    };
  }

  async start(): Promise<void> {
    await this.store.migrate();
    await this.readyAccess();
    await this.dbProbe.check();
    await this.cacheProbe.check();
    this.dbProbe.start();
    this.cacheProbe.start();
    this.ports.relay = await this.server.listen();
    this.ports.admin = await this.admin.listen();
    this.peering.start();
    this.log.info({ relayPort: this.ports.relay, adminPort: this.ports.admin, version: VERSION }, 'relay started');
  }

  /** Loads persisted bans; with PostgreSQL down the relay starts degraded without them and loads them once it is back. */
  private async readyAccess(): Promise<void> {
    const access = this.access;
    if (!access.ready) return;
    try {
      await access.ready();
    } catch (err) {
      if (this.storage.store.databaseReachable) throw err;
      this.log.error({ err }, 'bans not loaded: PostgreSQL unavailable; loading them when it is back');
      let waiting = true;
      this.dbProbe.onChange((state) => {
        if (!waiting || state !== 'up') return;
        waiting = false;
        access.ready!().catch((retryErr: unknown) => {
          waiting = true;
          this.log.error({ err: retryErr }, 'bans still not loaded; retrying when PostgreSQL is back');
        });
      });
    }
  }

  /** Graceful stop: stop accepting, let in-flight writes commit, close everything. */
  async stop(): Promise<void> {
    this.log.info('relay stopping');
    await this.server.close();
    for (const hook of [...this.stopHooks].reverse()) {
      try {
        await hook();
      } catch (err) {
        this.log.error({ err }, 'shutdown step failed');
      }
    }
    this.dbProbe.stop();
    this.cacheProbe.stop();
    await this.admin.close();
    await this.verifier.close();
    await this.store.close();
    await this.cache.close();
    this.log.info('relay stopped');
  }
}

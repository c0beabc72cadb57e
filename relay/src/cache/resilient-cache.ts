import type { Logger } from 'pino';
import type { StorageFaultMetrics } from '../degraded/metrics.js';
import { ModeClock } from '../degraded/mode-clock.js';
import { DEPENDENCY_DOWN, type DependencyProbe } from '../health/dependency-probe.js';
import type { Filter } from '../nostr/filter.js';
import type { EventCache, StoredEvent } from '../storage/types.js';
import type { SignatureVerifier } from '../crypto/types.js';
import { verifyEntries } from './entry-check.js';
import { CacheError } from './redis-cache.js';

/** Signature checks of cached events before they are served (Redis is not trusted). */
export interface CacheChecks {
  verifier: SignatureVerifier;
  /** A cached event whose signature does not verify: report it and drop it from the cache. */
  onBadSignature(item: StoredEvent): void;
}

export type CacheMode = 'ok' | 'fallback-mode';

/**
 * The EventCache the relay uses: Redis while the probe says it is up, bypassed while it is not (fallback mode).
 * In fallback the dedup check answers "not seen" at once, so the pipeline asks PostgreSQL (and its unique
 * constraint has the last word), cache writes are skipped, and cache reads fail fast. A call that is still waiting
 * when Redis is declared down is abandoned the same way, so a partitioned Redis never stalls a publish.
 */
export class ResilientCache implements EventCache {
  readonly clock = new ModeClock<CacheMode>('ok', ['ok', 'fallback-mode']);

  constructor(
    private readonly inner: EventCache,
    private readonly probe: DependencyProbe,
    private readonly metrics: StorageFaultMetrics,
    private readonly log: Logger,
    private readonly checks?: CacheChecks,
  ) {
    probe.onChange((state) => {
      const lasted = this.clock.set(state === 'up' ? 'ok' : 'fallback-mode');
      if (state === 'up') this.log.info({ fallbackMs: lasted }, 'cache recovered');
      else this.log.warn('cache fallback mode: dedup by PostgreSQL, cache bypassed');
    });
  }

  get mode(): CacheMode {
    return this.clock.current;
  }

  get up(): boolean {
    return this.probe.current === 'up';
  }

  private async guard<T>(op: string, call: () => Promise<T>, bypass: () => T): Promise<T> {
    if (!this.up) {
      this.metrics.cacheBypassed.inc({ op });
      return bypass();
    }
    let result: T | typeof DEPENDENCY_DOWN;
    try {
      result = await this.probe.raceDown(call());
    } catch (err) {
      this.probe.reportFailure(err);
      throw err;
    }
    if (result === DEPENDENCY_DOWN) {
      this.metrics.cacheBypassed.inc({ op });
      return bypass();
    }
    return result;
  }

  seen(ids: string[]): Promise<Set<string>> {
    return this.guard('seen', () => this.inner.seen(ids), () => new Set());
  }

  markSeen(ids: string[]): Promise<void> {
    return this.guard('markSeen', () => this.inner.markSeen(ids), () => undefined);
  }

  remember(items: StoredEvent[]): Promise<void> {
    return this.guard('remember', () => this.inner.remember(items), () => undefined);
  }

  async query(filters: Filter[]): Promise<StoredEvent[]> {
    const items = await this.guard('query', () => this.inner.query(filters), () => {
      throw new CacheError('Redis is unavailable (cache fallback mode)');
    });
    if (!this.checks || items.length === 0) return items;
    const sigs = await verifyEntries(this.checks.verifier, items);
    return items.filter((item, i) => {
      if (sigs[i]) return true;
      this.checks!.onBadSignature(item);
      return false;
    });
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

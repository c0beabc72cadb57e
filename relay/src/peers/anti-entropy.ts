import type { Logger } from 'pino';
import type pg from 'pg';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { IngestSource } from '../ingest/source.js';
import { NegentropyRemoteError, NegentropyUnsupportedError } from '../negentropy/initiator.js';
import type { EventTimeChanges } from '../negentropy/time-changes.js';
import type { WindowSummaries } from '../negentropy/window-summaries.js';
import { reconcileWindows } from '../negentropy/windowed.js';
import { isProtected } from '../nostr/kinds.js';
import type { EventStore } from '../storage/types.js';
import type { PeeringMetrics } from './metrics.js';
import { isRateLimited, Pacer, sleep } from './pacer.js';
import type { PeerLink } from './peer-link.js';
import { ReqCatchup } from './req-catchup.js';
import type { SyncCursor, SyncCursorStore } from './sync-cursors.js';

/** Ids per REQ / per push batch: under the default max_filter_values (1000) and max_limit (5000). */
const CHUNK = 500;
/**
 * One exchange after the session is open (a NEG-MSG reply, a REQ by ids, a pushed event's OK). The peer answers
 * these from memory or one indexed query, so 10 s is generous; a message lost on a lossy link (the flaky-network
 * profile drops 10 %) then costs one 10 s wait, not 30 s (sync after that heal took 23 s of its 30 s budget).
 * Opening a session (the peer loads its records) has its own bound, negentropy_open_timeout_ms.
 */
const STEP_TIMEOUT_MS = 10_000;
/** A peer found without NIP-77 is asked again (NEG-OPEN) after this long, or on its next connection. */
const REPROBE_MS = 10 * 60_000;

/** How the last run synced: NIP-77, or paged REQ because the peer refused NEG-OPEN or never answered it. */
export interface SyncMethodState {
  method: 'negentropy' | 'req-fallback';
  /** Why the fallback: `refused` (NOTICE, CLOSED or NEG-ERR), `timeout` (no answer within the open timeout). */
  reason: 'refused' | 'timeout' | null;
  detail: string | null;
  /** The connection (link upSince) and time the method was chosen on. */
  connection: number | null;
  at: number;
}

export interface SyncStatus {
  peer: string;
  nodeId: string | null;
  inProgress: boolean;
  runs: number;
  lastSyncAt: string | null;
  lastReason: string | null;
  lastDurationMs: number | null;
  /** Of the last run: ids only the peer had / only we had, events fetched and stored, events pushed and accepted. */
  lastDifferences: { need: number; have: number } | null;
  lastFetched: number;
  lastPushed: number;
  lastRounds: number;
  /** Of the last NIP-77 run: time windows reconciled, and how many matched by fingerprint in one round trip. */
  lastWindows: { total: number; identical: number } | null;
  lastError: string | null;
  totalFetched: number;
  totalPushed: number;
  /** `negentropy` | `req-fallback` (null before the first run), and why the fallback. */
  method: SyncMethodState['method'] | null;
  fallbackReason: SyncMethodState['reason'];
  fallbackDetail: string | null;
  /** REQ catch-up cursors (unix seconds) and counts of its last run (req-fallback only). */
  cursor: SyncCursor | null;
  lastCatchup: { pulledPages: number; pushedPages: number; received: number; stored: number; offered: number; pushed: number } | null;
}

export interface AntiEntropyOptions {
  pool: pg.Pool;
  store: EventStore;
  pipeline: IngestPipeline;
  windowSeconds: number;
  maxRecords: number;
  /** Most of our records per reconciliation window (sync_window_records). */
  windowRecords: number;
  /** Our windows' cached fingerprints, and the change log that keeps them honest. */
  summaries: WindowSummaries;
  changes: EventTimeChanges;
  metrics: PeeringMetrics;
  sourceFor: (link: PeerLink) => IngestSource;
  /** Events per second we ingest from one peer during a fetch (0: unpaced): under our own peer rate limit. */
  fetchRate: number;
  /** Wait for the first answer to NEG-OPEN before falling back to REQ catch-up. */
  openTimeoutMs: number;
  cursors: SyncCursorStore;
  catchupOverlapSeconds: number;
  catchupPageSize: number;
  logger: Logger;
}

let nextSession = 1;

/**
 * NIP-77 anti-entropy with one peer: reconcile (timestamp, id) sets as the initiator, fetch what we lack with
 * REQ {ids} (each event through the ingest pipeline: verified, attributed to the peer), push what the peer lacks
 * with EVENT and wait for its OKs. Ids we hold tombstones for (deleted, replaced) are not fetched again.
 */
export class AntiEntropy {
  private readonly status = new Map<string, SyncStatus>();
  private readonly running = new Map<string, Promise<SyncStatus>>();
  private readonly again = new Set<string>();
  /** Per peer URL: our fetches from it count against its peer budget in our own rate limiter. */
  private readonly fetchPacers = new Map<string, Pacer>();
  private readonly methods = new Map<string, SyncMethodState>();
  /** Per peer URL: the connection (upSince) on which a REQ catch-up last filled the gap; live events move the cursor after it. */
  private readonly caughtUp = new Map<string, number>();
  private readonly catchup: ReqCatchup;
  private readonly log: Logger;

  constructor(private readonly options: AntiEntropyOptions) {
    this.log = options.logger.child({ component: 'anti-entropy' });
    this.catchup = new ReqCatchup({
      store: options.store,
      pipeline: options.pipeline,
      cursors: options.cursors,
      overlapSeconds: options.catchupOverlapSeconds,
      pageSize: options.catchupPageSize,
      windowSeconds: options.windowSeconds,
      stepTimeoutMs: STEP_TIMEOUT_MS,
      logger: options.logger,
    });
  }

  /**
   * A live event from the peer's tail was accepted: once a catch-up filled the gap on this connection, the tail
   * is continuous from there, so the pull cursor may follow it (capped at now; written by the next run).
   */
  noteLive(link: PeerLink, createdAt: number): void {
    if (link.upSince === null || this.caughtUp.get(link.url) !== link.upSince) return;
    if (!Number.isSafeInteger(createdAt)) return;
    this.options.cursors.noteLive(link.url, Math.min(createdAt, Math.floor(Date.now() / 1000)));
  }

  list(): SyncStatus[] {
    return [...this.status.values()];
  }

  forget(url: string): void {
    this.status.delete(url);
    this.methods.delete(url);
    this.caughtUp.delete(url);
  }

  /** Runs a reconciliation with the peer; if one is running, another follows it (state may have moved on). */
  sync(link: PeerLink, reason: string): Promise<SyncStatus> {
    const current = this.running.get(link.url);
    if (current) {
      this.again.add(link.url);
      return current;
    }
    const run = this.runOnce(link, reason).finally(() => {
      this.running.delete(link.url);
      if (this.again.delete(link.url) && link.isUp) void this.sync(link, 'changes during the last run');
    });
    this.running.set(link.url, run);
    return run;
  }

  /** Like sync, but never returns a run that started earlier: waits for it, then reconciles again. */
  async syncFresh(link: PeerLink, reason: string): Promise<SyncStatus> {
    const current = this.running.get(link.url);
    if (current) await current.catch(() => undefined);
    const again = this.running.get(link.url);
    if (again) await again.catch(() => undefined);
    return this.sync(link, reason);
  }

  private statusOf(link: PeerLink): SyncStatus {
    let st = this.status.get(link.url);
    if (!st) {
      st = {
        peer: link.url, nodeId: link.remoteNodeId, inProgress: false, runs: 0, lastSyncAt: null, lastReason: null, lastDurationMs: null,
        lastDifferences: null, lastFetched: 0, lastPushed: 0, lastRounds: 0, lastWindows: null, lastError: null, totalFetched: 0, totalPushed: 0,
        method: null, fallbackReason: null, fallbackDetail: null, cursor: null, lastCatchup: null,
      };
      this.status.set(link.url, st);
    }
    st.nodeId = link.remoteNodeId;
    return st;
  }

  private async runOnce(link: PeerLink, reason: string): Promise<SyncStatus> {
    const st = this.statusOf(link);
    const started = Date.now();
    st.inProgress = true;
    st.lastReason = reason;
    const { metrics } = this.options;
    try {
      const known = this.methods.get(link.url);
      const skipProbe = known?.method === 'req-fallback' && known.connection === link.upSince && started - known.at < REPROBE_MS;
      let done = false;
      if (!skipProbe) {
        try {
          await this.negentropyRun(link, st, reason, started);
          this.setMethod(link, st, { method: 'negentropy', reason: null, detail: null, connection: link.upSince, at: started });
          done = true;
        } catch (err) {
          if (!(err instanceof NegentropyUnsupportedError || err instanceof NegentropyRemoteError)) throw err;
          const why = err instanceof NegentropyUnsupportedError ? err.reason : 'refused';
          this.log.info({ peer: link.url, reason: why, detail: err.message }, 'peer does not reconcile with NIP-77; falling back to REQ catch-up');
          this.setMethod(link, st, { method: 'req-fallback', reason: why, detail: err.message, connection: link.upSince, at: started });
        }
      }
      if (!done) await this.catchupRun(link, st, reason, started);
      st.lastError = null;
      metrics.syncRuns.inc({ peer: link.url, outcome: 'ok' });
    } catch (err) {
      st.lastError = (err as Error).message;
      metrics.syncRuns.inc({ peer: link.url, outcome: 'error' });
      this.log.warn({ err, peer: link.url, reason, method: st.method }, 'sync failed');
    } finally {
      st.inProgress = false;
      st.runs++;
      st.lastSyncAt = new Date().toISOString();
      st.lastDurationMs = Date.now() - started;
    }
    return { ...st };
  }

  private setMethod(link: PeerLink, st: SyncStatus, state: SyncMethodState): void {
    this.methods.set(link.url, state);
    Object.assign(st, { method: state.method, fallbackReason: state.reason, fallbackDetail: state.detail });
  }

  private async negentropyRun(link: PeerLink, st: SyncStatus, reason: string, started: number): Promise<void> {
    const { metrics } = this.options;
    let need = 0;
    let have = 0;
    let fetched = 0;
    let pushed = 0;
    const result = await reconcileWindows({
      pool: this.options.pool,
      channel: link.negentropyChannel(),
      summaries: this.options.summaries,
      changes: this.options.changes,
      windowRecords: this.options.windowRecords,
      maxRecords: this.options.maxRecords,
      since: this.options.windowSeconds > 0 ? Math.floor(Date.now() / 1000) - this.options.windowSeconds : 0,
      subId: () => `peer-sync-${nextSession++}`,
      frameSizeLimit: link.negentropyFrameLimit(),
      timeoutMs: STEP_TIMEOUT_MS,
      openTimeoutMs: this.options.openTimeoutMs,
      onWindow: async (w) => {
        const needIds = [...new Set(w.need)];
        const haveIds = [...new Set(w.have)];
        need += needIds.length;
        have += haveIds.length;
        metrics.syncDifferences.inc({ peer: link.url, direction: 'need' }, needIds.length);
        metrics.syncDifferences.inc({ peer: link.url, direction: 'have' }, haveIds.length);
        fetched += await this.fetch(link, await this.withoutTombstones(needIds));
        pushed += await this.push(link, haveIds);
      },
    });
    if (link.queue.overflowed) link.queue.overflowed = false;
    Object.assign(st, {
      lastDifferences: { need, have }, lastFetched: fetched, lastPushed: pushed, lastRounds: result.rounds,
      lastWindows: { total: result.windows, identical: result.identical },
    });
    st.totalFetched += fetched;
    st.totalPushed += pushed;
    const summary = {
      peer: link.url, nodeId: link.remoteNodeId, records: result.records, windows: result.windows, identicalWindows: result.identical,
      need, have, fetched, pushed, rounds: result.rounds, durationMs: Date.now() - started, reason,
    };
    if (need + have > 0) this.log.info(summary, 'sync found differences');
    else this.log.debug(summary, 'sync found no differences');
  }

  /** Paged REQ both ways from the persisted cursors (req-catchup.ts), for a peer without NIP-77. */
  private async catchupRun(link: PeerLink, st: SyncStatus, reason: string, started: number): Promise<void> {
    const connection = link.upSince;
    try {
      const r = await this.catchup.run(link, this.options.sourceFor(link), this.pacerFor(link));
      if (connection !== null && link.upSince === connection) this.caughtUp.set(link.url, connection);
      if (link.queue.overflowed) link.queue.overflowed = false;
      const { cursor, ...counts } = r;
      Object.assign(st, { cursor, lastCatchup: counts, lastDifferences: null, lastFetched: r.stored, lastPushed: r.pushed, lastRounds: 0, lastWindows: null });
      st.totalFetched += r.stored;
      st.totalPushed += r.pushed;
      const summary = { peer: link.url, ...counts, cursor, durationMs: Date.now() - started, reason };
      if (r.stored + r.pushed > 0) this.log.info(summary, 'REQ catch-up filled a gap');
      else this.log.debug(summary, 'REQ catch-up found nothing missing');
    } finally {
      st.cursor = this.options.cursors.peek(link.url) ?? st.cursor;
    }
  }

  private pacerFor(link: PeerLink): Pacer {
    let pacer = this.fetchPacers.get(link.url);
    if (!pacer) this.fetchPacers.set(link.url, (pacer = new Pacer(this.options.fetchRate)));
    return pacer;
  }

  /** Ids we deleted or saw replaced must not come back: the store knows them as 'deleted' (tombstones). */
  private async withoutTombstones(ids: string[]): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const states = await this.options.store.lookup(chunk);
      for (const id of chunk) if (states.get(id) !== 'deleted') out.push(id);
    }
    return out;
  }

  private async fetch(link: PeerLink, ids: string[]): Promise<number> {
    let stored = 0;
    const source = this.options.sourceFor(link);
    const pacer = this.pacerFor(link);
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      // Paced to our own limit for this peer, so what we asked for is not refused by our own rate limiter.
      await pacer.take(chunk.length);
      const events = await link.query([{ ids: chunk, limit: chunk.length }], STEP_TIMEOUT_MS);
      // Never trusted: each event runs the whole pipeline (shape, id, signature, kind rules) as the peer's.
      const results = await Promise.all(events.map((e) => this.submitRetrying(e, source)));
      stored += results.filter((r) => r.ok && r.message === '').length;
    }
    return stored;
  }

  /** A fetched event refused by our own rate limit (live traffic shares the budget) is submitted again after a pause. */
  private async submitRetrying(event: unknown, source: IngestSource) {
    // Fetched because our database lacks it: a Redis dedup mark saying otherwise is stale.
    const submit = () => this.options.pipeline.submit(event, source, undefined, { databaseLacksIt: true });
    let result = await submit();
    for (let attempt = 1; attempt <= 8 && isRateLimited(result.message); attempt++) {
      await sleep(1000 * attempt);
      result = await submit();
    }
    return result;
  }

  private async push(link: PeerLink, ids: string[]): Promise<number> {
    let accepted = 0;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const items = await this.options.store.query([{ ids: chunk, limit: chunk.length }]);
      const results = await Promise.all(
        items
          .filter((item) => !isProtected(item.event))
          .map((item) => link.pushPaced(item.raw, item.event.id, 1, STEP_TIMEOUT_MS)),
      );
      accepted += results.filter((r) => r.ok).length;
      const failed = results.find((r) => !r.ok && !r.message.startsWith('blocked:'));
      if (failed) this.log.debug({ peer: link.url, message: failed.message }, 'peer refused a pushed event');
    }
    return accepted;
  }
}

import type { Logger } from 'pino';
import type { RelayLimits } from '../config/schema.js';
import type { SignatureVerifier } from '../crypto/types.js';
import type { RelayMetrics } from '../metrics/registry.js';
import { computeEventId, eventShapeError, type NostrEvent } from '../nostr/event.js';
import { isExpired, isProtected, kindClass } from '../nostr/kinds.js';
import type { SubscriptionRegistry, Subscriber } from '../server/subscriptions.js';
import { StorageError, type EventCache, type EventStore, type StoredEvent } from '../storage/types.js';
import { CacheBatcher } from './cache-batcher.js';
import { RecentEvents } from './recent-events.js';
import { describeSource, type IngestResult, type IngestSource } from './source.js';

/**
 * A check that may refuse an event before it costs a signature verification (rate limits, bans).
 * Returns a refusal, or null to let the event through.
 */
export interface IngestGuard {
  check(event: NostrEvent, source: IngestSource): Promise<IngestResult | null> | IngestResult | null;
}

/** Told about every event this relay accepted (stored or ephemeral), after its OK was decided. */
export type AcceptedListener = (item: StoredEvent, source: IngestSource, stored: boolean) => void;

/** Told about every event that failed id or signature verification. */
export type InvalidListener = (source: IngestSource, reason: 'id' | 'signature' | 'shape') => void;

export interface PipelineDeps {
  store: EventStore;
  cache: EventCache;
  verifier: SignatureVerifier;
  subscriptions: SubscriptionRegistry;
  metrics: RelayMetrics;
  limits: RelayLimits;
  logger: Logger;
}

/** NIP-70 refusals; the connection answers them with an AUTH challenge. */
export const PROTECTED_AUTH_REQUIRED = 'auth-required: this event is protected (NIP-70): AUTH (NIP-42) as its author to publish it';
export const PROTECTED_WRONG_AUTHOR = 'restricted: this event is protected (NIP-70): only its author may publish it; you are authenticated as another key';

const ok = (message = ''): IngestResult => ({ ok: true, message });
const refuse = (message: string): IngestResult => ({ ok: false, message });

/**
 * The ingest pipeline, in this order: shape → limits → id → expiration → guards → duplicate check
 * (Redis, then PostgreSQL) → signature (worker pool) → kind rules and batched insert → OK after commit →
 * fan-out. Cheap checks come first so floods of junk or duplicates never reach the signature workers.
 */
export interface SubmitOptions {
  /**
   * PostgreSQL itself just said it lacks this id (anti-entropy found it missing): a Redis dedup mark for it is
   * stale (the row was deleted behind our back, or restored from an older backup), so only PostgreSQL decides.
   */
  databaseLacksIt?: boolean;
}

export class IngestPipeline {
  readonly recent = new RecentEvents();
  private readonly guards: IngestGuard[] = [];
  private readonly acceptedListeners: AcceptedListener[] = [];
  private readonly invalidListeners: InvalidListener[] = [];
  /** Submissions of the same id in flight share one outcome (a peer and a client racing). */
  private readonly inflight = new Map<string, Promise<IngestResult>>();
  private readonly log: Logger;

  private readonly cacheCalls: CacheBatcher;

  constructor(private readonly deps: PipelineDeps) {
    this.log = deps.logger.child({ component: 'ingest' });
    this.cacheCalls = new CacheBatcher(deps.cache, (err) => {
      deps.metrics.cacheErrors.inc({ op: 'remember' });
      this.log.debug({ err }, 'cache update failed (the event is stored in PostgreSQL)');
    });
  }

  addGuard(guard: IngestGuard): void {
    this.guards.push(guard);
  }

  onAccepted(listener: AcceptedListener): void {
    this.acceptedListeners.push(listener);
  }

  onInvalid(listener: InvalidListener): void {
    this.invalidListeners.push(listener);
  }

  /**
   * Runs one untrusted event through the pipeline. `except` is the subscriber the event came from, so
   * live fan-out does not echo it back. Never throws: every outcome is an OK answer.
   */
  async submit(candidate: unknown, source: IngestSource, except?: Subscriber, options: SubmitOptions = {}): Promise<IngestResult> {
    const started = performance.now();
    const { metrics } = this.deps;
    metrics.eventsReceived.inc({ source: source.kind });
    let result: IngestResult;
    try {
      result = await this.process(candidate, source, except, options);
    } catch (err) {
      // Anything unexpected is an infrastructure error for this event: say so, never OK true.
      this.log.error({ err, source: describeSource(source) }, 'ingest failed');
      result = refuse('error: internal error while processing the event');
    }
    if (result.ok) {
      metrics.eventsAccepted.inc({ source: source.kind });
      metrics.acceptedRate.mark();
      if (result.message.startsWith('duplicate:')) metrics.duplicates.inc();
    } else {
      metrics.eventsRejected.inc({ reason: result.message.split(':', 1)[0] ?? 'unknown', source: source.kind });
    }
    metrics.recordPublish(performance.now() - started);
    return result;
  }

  private async process(candidate: unknown, source: IngestSource, except: Subscriber | undefined, options: SubmitOptions): Promise<IngestResult> {
    const shapeError = eventShapeError(candidate);
    if (shapeError) {
      this.notifyInvalid(source, 'shape');
      return refuse('invalid: ' + shapeError);
    }
    const event = candidate as NostrEvent;
    const limitError = this.limitError(event);
    if (limitError) return limitError;
    if (computeEventId(event) !== event.id) {
      this.deps.metrics.signatureFailures.inc({ source: source.kind });
      this.log.warn({ id: event.id, source: describeSource(source), ...sourceFields(source) }, 'signature verification failed: id does not match the event hash');
      this.notifyInvalid(source, 'id');
      return refuse('invalid: event id does not match the sha256 of its serialization');
    }
    if (isExpired(event, Math.floor(Date.now() / 1000))) return refuse('invalid: event has expired (NIP-40)');
    const protectedRefusal = this.protectedRefusal(event, source);
    if (protectedRefusal) return protectedRefusal;
    for (const guard of this.guards) {
      const refusal = await guard.check(event, source);
      if (refusal) return refusal;
    }
    const pending = this.inflight.get(event.id);
    if (pending) {
      const shared = await pending;
      return shared.ok && shared.message === '' ? ok('duplicate: already have this event') : shared;
    }
    const work = this.admit(event, source, except, options);
    this.inflight.set(event.id, work);
    try {
      return await work;
    } finally {
      this.inflight.delete(event.id);
    }
  }

  private async admit(event: NostrEvent, source: IngestSource, except: Subscriber | undefined, options: SubmitOptions): Promise<IngestResult> {
    const ephemeral = kindClass(event.kind) === 'ephemeral';
    if (!ephemeral) {
      const known = await this.knownState(event.id, options.databaseLacksIt === true);
      if (known === 'stored') return ok('duplicate: already have this event');
      if (known === 'deleted') return refuse('blocked: this event was deleted');
    }
    if (!(await this.deps.verifier.verify(event.id, event.pubkey, event.sig))) {
      this.deps.metrics.signatureFailures.inc({ source: source.kind });
      this.log.warn({ id: event.id, source: describeSource(source), ...sourceFields(source) }, 'signature verification failed');
      this.notifyInvalid(source, 'signature');
      return refuse('invalid: signature verification failed');
    }
    const item: StoredEvent = { event, raw: JSON.stringify(event) };
    if (ephemeral) {
      this.accepted(item, source, false, except);
      return ok();
    }
    let outcome;
    try {
      outcome = await this.deps.store.save(item);
    } catch (err) {
      const code = err instanceof StorageError ? err.code : 'unknown';
      this.deps.metrics.dbErrors.inc({ code });
      this.log.error({ err, id: event.id, code }, 'event not stored');
      return refuse(`error: could not store the event (${code}); try again later`);
    }
    if (outcome.status === 'duplicate') return ok('duplicate: already have this event');
    if (outcome.status === 'rejected') return refuse(outcome.reason);
    this.accepted(item, source, true, except);
    return ok();
  }

  /** Duplicate check: Redis first (cheap), then PostgreSQL. A Redis failure only skips the fast path. */
  private async knownState(id: string, skipCache: boolean): Promise<'stored' | 'deleted' | undefined> {
    try {
      if (!skipCache && (await this.cacheCalls.seen(id))) return 'stored';
    } catch (err) {
      this.deps.metrics.cacheErrors.inc({ op: 'seen' });
      this.log.debug({ err }, 'dedup cache unavailable; asking PostgreSQL');
    }
    try {
      return (await this.deps.store.lookup([id])).get(id);
    } catch (err) {
      // Unknown state: the insert's ON CONFLICT still catches a duplicate, so carry on to save().
      this.deps.metrics.dbErrors.inc({ code: err instanceof StorageError ? err.code : 'unknown' });
      return undefined;
    }
  }

  private accepted(item: StoredEvent, source: IngestSource, stored: boolean, except?: Subscriber): void {
    this.recent.add(item.event, source, stored);
    this.deps.subscriptions.fanOut(item.event, item.raw, except);
    if (stored) this.rememberInCache(item);
    for (const listener of this.acceptedListeners) {
      try {
        listener(item, source, stored);
      } catch (err) {
        this.log.error({ err }, 'accepted-event listener failed');
      }
    }
  }

  private rememberInCache(item: StoredEvent): void {
    // Replaceable and addressable events may be superseded later without the pipeline seeing which id
    // went, so they get no dedup mark: their duplicate check always asks PostgreSQL.
    const cls = kindClass(item.event.kind);
    this.cacheCalls.remember(item, cls !== 'replaceable' && cls !== 'addressable');
  }

  private notifyInvalid(source: IngestSource, reason: 'id' | 'signature' | 'shape'): void {
    for (const listener of this.invalidListeners) listener(source, reason);
  }

  /**
   * NIP-70: a `["-"]` event is accepted only from a connection authenticated (NIP-42) as its author. An
   * authenticated connection's source carries the key it proved (peers/peer-auth.ts): `authenticatedAs` for a
   * client, `nodeId` for a peer. There is no relay-to-relay exception: our relays never
   * forward protected events (peers/forwarder.ts, negentropy/storage.ts); a protected event a peer relays (a
   * third-party relay's live REQ answer) is refused unless the peer is its author.
   * The check trusts `pubkey` before the signature is verified: it only ever refuses on it; an accepted event
   * still has its signature verified below.
   */
  private protectedRefusal(event: NostrEvent, source: IngestSource): IngestResult | null {
    if (!isProtected(event)) return null;
    const provedKey = source.kind === 'peer' ? source.nodeId : source.authenticatedAs;
    if (provedKey === event.pubkey) return null;
    return refuse(provedKey !== undefined ? PROTECTED_WRONG_AUTHOR : PROTECTED_AUTH_REQUIRED);
  }

  private limitError(event: NostrEvent): IngestResult | null {
    const { limits } = this.deps;
    if (event.content.length > limits.maxContentLength) return refuse(`invalid: content is longer than ${limits.maxContentLength} characters`);
    if (event.tags.length > limits.maxEventTags) return refuse(`invalid: more than ${limits.maxEventTags} tags`);
    const now = Math.floor(Date.now() / 1000);
    if (limits.createdAtUpperLimit > 0 && event.created_at > now + limits.createdAtUpperLimit) {
      return refuse(`invalid: created_at is more than ${limits.createdAtUpperLimit} seconds in the future`);
    }
    if (limits.createdAtLowerLimit > 0 && event.created_at < now - limits.createdAtLowerLimit) {
      return refuse(`invalid: created_at is more than ${limits.createdAtLowerLimit} seconds in the past`);
    }
    return null;
  }
}

function sourceFields(source: IngestSource): Record<string, unknown> {
  return source.kind === 'client' ? { clientAddress: source.address } : { peerNodeId: source.nodeId };
}

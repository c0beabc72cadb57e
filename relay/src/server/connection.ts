import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { RelayLimits } from '../config/schema.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { IngestSource } from '../ingest/source.js';
import type { RelayMetrics } from '../metrics/registry.js';
import { FilterError, filterIsEmpty, parseFilter, type Filter } from '../nostr/filter.js';
import { closedFrame, eoseFrame, eventFrame, noticeFrame, okFrame } from './messages.js';
import type { EventReader } from './reader.js';
import type { Subscriber, SubscriptionRegistry } from './subscriptions.js';
import { ipOfAddress } from '../security/subjects.js';
import { PROTECTED_AUTH_REQUIRED, PROTECTED_WRONG_AUTHOR } from '../ingest/pipeline.js';
import { randomBytes } from 'node:crypto';
import { Semaphore, TokenBucket, type ClientRefusal, type IpLimits, type SharedReqLimits } from './req-limits.js';

/** Handles a message type beyond NIP-01's (AUTH, NEG-OPEN ...). Registered on the server by later layers. */
export type MessageHandler = (connection: ClientConnection, message: unknown[]) => void | Promise<void>;

export interface ConnectionDeps {
  pipeline: IngestPipeline;
  reader: EventReader;
  subscriptions: SubscriptionRegistry;
  metrics: RelayMetrics;
  limits: RelayLimits;
  logger: Logger;
  handlers: Map<string, MessageHandler>;
  /** Global query slots, per-IP REQ buckets and the limit counters. */
  shared: SharedReqLimits;
  /** Whether a node id is a member of our relay network (we hold a link to it); absent: none is. */
  isNetworkMember?: (nodeId: string) => boolean;
}

/** The NIP-42 challenge the AUTH handler (peers/peer-auth.ts) checks an AUTH answer against. */
const AUTH_CHALLENGE_ATTRIBUTE = 'nip42.challenge';

/** A REQ whose initial query is running: superseded (same id again) or closed when this entry is replaced. */
interface RunningQuery {
  controller: AbortController;
}

/** A slow reader whose send buffer grows past this is disconnected, so memory stays bounded. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** A REQ reads its next page of stored events only once the send buffer is below this. */
const PAGE_BUFFER_BYTES = 1024 * 1024;

/** Longest over-long subscription id echoed whole in a CLOSED (the most max_subid_length may be set to). */
const MAX_ECHOED_SUBID = 1024;

let nextConnectionId = 1;

/** One client WebSocket: parses NIP-01 frames, enforces the advertised limits, answers every EVENT and REQ. */
export class ClientConnection implements Subscriber {
  readonly id = nextConnectionId++;
  /** Who this connection speaks for: its client address, or a peer node proven by NIP-42 (see `decideRole`). */
  get source(): IngestSource {
    return this.role;
  }
  private role: IngestSource;
  private roleFixed = false;
  /** Extra per-connection state for protocol extensions (NIP-42 auth, negentropy sessions). */
  readonly attributes = new Map<string, unknown>();
  /** Told about every malformed message (each NOTICE starting with `invalid:`), e.g. to penalise the sender. */
  onMalformed: ((reason: string) => void) | undefined;
  private inflight = 0;
  /**
   * Initial queries in flight, by subscription id. Only open subscriptions have an entry (bounded by
   * max_subscriptions); a REQ reusing the id or a CLOSE replaces or drops it, so late results are recognised.
   */
  private readonly queries = new Map<string, RunningQuery>();
  private readonly reqBucket: TokenBucket;
  private readonly querySlots: Semaphore;
  private readonly ipLimits: IpLimits;
  private closed = false;
  private readonly log: Logger;

  constructor(readonly socket: WebSocket, readonly address: string, private readonly deps: ConnectionDeps) {
    this.role = { kind: 'client', address, connectionId: this.id };
    this.log = deps.logger.child({ component: 'connection', connectionId: this.id, address });
    this.reqBucket = new TokenBucket(deps.limits.reqRatePerSecond, deps.limits.reqBurst);
    this.querySlots = new Semaphore(deps.limits.maxQueriesPerConnection);
    this.ipLimits = deps.shared.join(ipOfAddress(address));
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    socket.on('close', () => this.onClose());
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
  }

  /** Whether the role was decided (by an accepted AUTH): it then stays for the connection's life. */
  get roleDecided(): boolean {
    return this.roleFixed;
  }

  /** Decides who this connection speaks for, once; a second call throws (a connection never changes role). */
  decideRole(role: IngestSource): void {
    if (this.roleFixed) throw new Error(`connection ${this.id} already has its role`);
    this.roleFixed = true;
    this.role = role;
    if (role.kind === 'peer') this.ipLimits.becamePeer();
  }

  /**
   * A client that AUTHs (again) as a key that is not a peer: it stays a client, now speaking as that key (NIP-70
   * needs it; NIP-42 lets a connection authenticate more than once). A peer's role never changes.
   */
  authenticateClient(pubkey: string): void {
    if (this.role.kind !== 'client') throw new Error(`connection ${this.id} is a peer; it cannot re-authenticate as a client`);
    this.roleFixed = true;
    this.role = { kind: 'client', address: this.address, connectionId: this.id, authenticatedAs: pubkey };
  }

  send(frame: string): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.log.warn({ buffered: this.socket.bufferedAmount }, 'client reads too slowly; disconnecting');
      this.socket.close(1008, 'reading too slowly');
      this.closed = true;
      return;
    }
    this.socket.send(frame);
  }

  /** Resolves once the socket's send buffer is under PAGE_BUFFER_BYTES (or the connection or the query is over). */
  private async drained(signal: AbortSignal): Promise<void> {
    while (!this.closed && !signal.aborted && this.socket.bufferedAmount > PAGE_BUFFER_BYTES) await sleep(5);
  }

  sendEvent(subId: string, raw: string): void {
    this.send(eventFrame(subId, raw));
  }

  notice(message: string): void {
    if (message.startsWith('invalid:')) this.onMalformed?.(message);
    this.send(noticeFrame(message));
  }

  /**
   * A peer we trust with peer-sized work (full NIP-77 sessions): authenticated (NIP-42) as a node id that is a
   * member of our relay network, i.e. one we hold a peer link to. Any key can AUTH, so AUTH alone is not enough.
   */
  isProvenPeer(): boolean {
    return this.source.kind === 'peer' && (this.deps.isNetworkMember?.(this.source.nodeId) ?? false);
  }

  /**
   * Takes one token from this connection's and its IP's REQ buckets (NIP-77 NEG-OPEN from clients shares them:
   * each is a query too); proven peers are exempt. Returns a `rate-limited:` reason when either is empty, counted; null otherwise.
   */
  takeQueryToken(): string | null {
    const { limits, shared } = this.deps;
    // Members of our relay network heartbeat and reconcile with REQs; their load is bounded by the query slots.
    if (this.isProvenPeer()) return null;
    if (!this.reqBucket.take()) {
      shared.metrics.refused.inc({ reason: 'req-rate-connection' });
      return `rate-limited: more than ${limits.reqRatePerSecond} REQs per second on this connection`;
    }
    if (!this.ipLimits.takeIp()) {
      shared.metrics.refused.inc({ reason: 'req-rate-ip' });
      return `rate-limited: more than ${limits.reqRatePerIp} REQs per second from your address`;
    }
    return null;
  }

  /** Counts a message refused by a connection limit (relay_client_refusals_total). */
  countRefusal(reason: ClientRefusal): void {
    this.deps.shared.metrics.refused.inc({ reason });
  }

  close(code = 1000, reason = ''): void {
    if (!this.closed) this.socket.close(code, reason);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const { limits } = this.deps;
    if (data.length > limits.maxMessageLength) {
      this.notice(`invalid: message is ${data.length} bytes; the limit is ${limits.maxMessageLength}`);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(isBinary ? data.toString('utf8') : data.toString());
    } catch {
      this.notice('invalid: message is not valid JSON');
      return;
    }
    if (!Array.isArray(message) || typeof message[0] !== 'string') {
      this.notice('invalid: message must be a JSON array starting with a type string');
      return;
    }
    switch (message[0]) {
      case 'EVENT':
        this.onEvent(message);
        return;
      case 'REQ':
        void this.onReq(message);
        return;
      case 'CLOSE':
        this.onCloseSub(message);
        return;
      default: {
        const handler = this.deps.handlers.get(message[0]);
        if (!handler) {
          this.notice(`invalid: unknown message type ${JSON.stringify(message[0].slice(0, 32))}`);
          return;
        }
        Promise.resolve(handler(this, message)).catch((err: unknown) => {
          this.log.error({ err, type: message[0] }, 'message handler failed');
          this.notice(`error: could not handle ${message[0]}`);
        });
      }
    }
  }

  private onEvent(message: unknown[]): void {
    const event = message[1];
    if (message.length !== 2 || typeof event !== 'object' || event === null || Array.isArray(event)) {
      this.notice('invalid: EVENT must be ["EVENT", <event object>]');
      return;
    }
    const id = (event as { id?: unknown }).id;
    const idForOk = typeof id === 'string' ? id.slice(0, 64) : '';
    this.inflight++;
    if (this.inflight >= this.deps.limits.maxInflightPerConnection && !this.socket.isPaused) this.socket.pause();
    // A client sees its own events on its own subscriptions; a peer must not get its events echoed back.
    const except = this.source.kind === 'peer' ? this : undefined;
    void this.deps.pipeline.submit(event, this.source, except).then((result) => {
      this.inflight--;
      if (this.socket.isPaused && this.inflight < this.deps.limits.maxInflightPerConnection / 2) this.socket.resume();
      if (!result.ok && (result.message === PROTECTED_AUTH_REQUIRED || result.message === PROTECTED_WRONG_AUTHOR)) this.challenge();
      this.send(okFrame(idForOk, result.ok, result.message));
    });
  }

  /**
   * NIP-70: a protected event from a connection not authenticated as its author gets an AUTH challenge: the
   * outstanding one, or (already authenticated as another key) a fresh one, so the client may AUTH as the author.
   */
  private challenge(): void {
    if (!this.deps.handlers.has('AUTH')) return;
    let challenge = this.attributes.get(AUTH_CHALLENGE_ATTRIBUTE);
    if (typeof challenge !== 'string') {
      challenge = randomBytes(16).toString('hex');
      this.attributes.set(AUTH_CHALLENGE_ATTRIBUTE, challenge);
    }
    this.send(JSON.stringify(['AUTH', challenge]));
  }

  private async onReq(message: unknown[]): Promise<void> {
    const { limits, subscriptions, metrics, shared } = this.deps;
    shared.metrics.reqsReceived.inc();
    const subId = message[1];
    if (typeof subId !== 'string' || subId.length === 0) {
      this.notice('invalid: REQ needs a non-empty subscription id string');
      return;
    }
    if (subId.length > limits.maxSubidLength) {
      metrics.reqsServed.inc({ outcome: 'closed' });
      // A slightly long id is echoed so the client can match the answer; a huge one (100 KB) is not echoed whole.
      const echoed = subId.length <= MAX_ECHOED_SUBID ? subId : subId.slice(0, limits.maxSubidLength);
      this.send(closedFrame(echoed, `invalid: subscription id is longer than ${limits.maxSubidLength} characters`));
      return;
    }
    const refuse = (reason: string, outcome: 'closed' | 'rate-limited' = 'closed') => {
      metrics.reqsServed.inc({ outcome });
      this.send(closedFrame(subId, reason));
    };
    // Rate limits before any parsing: a flood costs a bucket check and a CLOSED each.
    const limited = this.takeQueryToken();
    if (limited) return refuse(limited, 'rate-limited');
    const rawFilters = message.slice(2);
    if (rawFilters.length === 0) return refuse('invalid: REQ needs at least one filter');
    if (rawFilters.length > limits.maxFilters) return refuse(`invalid: more than ${limits.maxFilters} filters`);
    let filters: Filter[];
    try {
      const filterLimits = { maxListLength: limits.maxFilterValues, maxLimit: limits.maxLimit, defaultLimit: limits.defaultLimit };
      filters = rawFilters.map((raw) => parseFilter(raw, filterLimits));
    } catch (err) {
      if (err instanceof FilterError) return refuse('invalid: ' + err.message);
      throw err;
    }
    const replacing = subscriptions.has(this, subId);
    if (!replacing && subscriptions.countFor(this) >= limits.maxSubscriptions) {
      return refuse(`blocked: too many subscriptions (the limit is ${limits.maxSubscriptions})`);
    }
    // Peers' subscriptions count towards their IP (behind a local proxy every node shows 127.0.0.1) but are never refused.
    if (!replacing && !this.ipLimits.addSubscription(this.isProvenPeer())) {
      shared.metrics.refused.inc({ reason: 'req-subscriptions-ip' });
      return refuse(`blocked: too many subscriptions from your address (the limit is ${limits.maxSubscriptionsPerIp})`);
    }
    this.queries.get(subId)?.controller.abort();
    this.queries.delete(subId);
    subscriptions.add(this, subId, filters);
    metrics.subscriptions.set(subscriptions.size);

    const stored = filters.filter((f) => f.limit !== 0 && !filterIsEmpty(f));
    if (stored.length === 0) {
      metrics.reqsServed.inc({ outcome: 'eose' });
      this.send(eoseFrame(subId));
      return;
    }
    const entry: RunningQuery = { controller: new AbortController() };
    const { controller } = entry;
    this.queries.set(subId, entry);
    const current = () => this.queries.get(subId) === entry && !this.closed;
    // The deadline covers the wait for a query slot too: a REQ never waits forever behind others.
    const timer = setTimeout(() => controller.abort(new Error('query deadline')), limits.queryTimeoutMs);
    const releases: Array<() => void> = [];
    try {
      releases.push(await this.querySlots.acquire(controller.signal));
      releases.push(await shared.queries.acquire(controller.signal));
      const result = this.deps.reader.read(stored, controller.signal);
      const pages = result.pages[Symbol.asyncIterator]();
      try {
        for (;;) {
          const step = await untilAborted(pages.next(), controller.signal);
          if (step.done) break;
          if (!current()) return;
          for (const item of step.value) {
            // Stop early once the connection is gone (send() closes a reader whose buffer passed the bound).
            if (this.closed) return;
            this.sendEvent(subId, item.raw);
          }
          // The next page is read only once this one is mostly on the wire: a slow reader holds one page, not the answer.
          await this.drained(controller.signal);
        }
      } finally {
        // Ends the read early when we stop before its last page (its connection and query slot are released).
        void pages.return?.()?.catch(() => undefined);
      }
      if (!current()) return;
      const partialReason = result.partialReason();
      if (partialReason) this.notice(`partial results for ${subId}: ${partialReason}`);
      metrics.reqsServed.inc({ outcome: 'eose' });
      this.send(eoseFrame(subId));
    } catch (err) {
      if (!current()) return;
      this.log.warn({ err, subId }, 'initial query failed');
      if (subscriptions.remove(this, subId)) this.ipLimits.removeSubscriptions(1);
      metrics.subscriptions.set(subscriptions.size);
      refuse(controller.signal.aborted ? 'error: query timed out; try again later' : 'error: could not query stored events; try again later');
    } finally {
      clearTimeout(timer);
      for (const release of releases.reverse()) release();
      if (this.queries.get(subId) === entry) this.queries.delete(subId);
    }
  }

  private onCloseSub(message: unknown[]): void {
    const subId = message[1];
    if (typeof subId !== 'string') {
      this.notice('invalid: CLOSE needs a subscription id string');
      return;
    }
    const { limits, shared } = this.deps;
    if (subId.length > limits.maxSubidLength) {
      shared.metrics.refused.inc({ reason: 'close-subid' });
      this.notice(`invalid: CLOSE subscription id is longer than ${limits.maxSubidLength} characters`);
      return;
    }
    // A CLOSE for an id that is not open leaves nothing behind.
    const running = this.queries.get(subId);
    if (running) {
      running.controller.abort();
      this.queries.delete(subId);
    }
    if (this.deps.subscriptions.remove(this, subId)) {
      this.ipLimits.removeSubscriptions(1);
      this.deps.metrics.subscriptions.set(this.deps.subscriptions.size);
    }
  }

  private onClose(): void {
    this.closed = true;
    this.ipLimits.removeSubscriptions(this.deps.subscriptions.countFor(this));
    this.ipLimits.leave();
    for (const { controller } of this.queries.values()) controller.abort();
    this.queries.clear();
    this.deps.subscriptions.removeAll(this);
    this.deps.metrics.subscriptions.set(this.deps.subscriptions.size);
  }
}

/** Rejects as soon as the signal aborts, even if the underlying query ignores it (a black-holed database). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // The work was started anyway: its rejection must be observed, or it ends the process as an unhandled one.
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

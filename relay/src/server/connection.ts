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
}

/** A slow reader whose send buffer grows past this is disconnected, so memory stays bounded. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

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
  /** Bumped when a subscription id is reused, so a superseded REQ's late results are dropped. */
  private readonly generations = new Map<string, number>();
  private readonly queries = new Map<string, AbortController>();
  private closed = false;
  private readonly log: Logger;

  constructor(readonly socket: WebSocket, readonly address: string, private readonly deps: ConnectionDeps) {
    this.role = { kind: 'client', address, connectionId: this.id };
    this.log = deps.logger.child({ component: 'connection', connectionId: this.id, address });
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

  sendEvent(subId: string, raw: string): void {
    this.send(eventFrame(subId, raw));
  }

  notice(message: string): void {
    if (message.startsWith('invalid:')) this.onMalformed?.(message);
    this.send(noticeFrame(message));
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
      this.send(okFrame(idForOk, result.ok, result.message));
    });
  }

  private async onReq(message: unknown[]): Promise<void> {
    const { limits, subscriptions, metrics } = this.deps;
    const subId = message[1];
    if (typeof subId !== 'string' || subId.length === 0) {
      this.notice('invalid: REQ needs a non-empty subscription id string');
      return;
    }
    const refuse = (reason: string) => {
      metrics.reqsServed.inc({ outcome: 'closed' });
      this.send(closedFrame(subId, reason));
    };
    if (subId.length > limits.maxSubidLength) return refuse(`invalid: subscription id is longer than ${limits.maxSubidLength} characters`);
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
    this.queries.get(subId)?.abort();
    const generation = (this.generations.get(subId) ?? 0) + 1;
    this.generations.set(subId, generation);
    subscriptions.add(this, subId, filters);
    metrics.subscriptions.set(subscriptions.size);

    const stored = filters.filter((f) => f.limit !== 0 && !filterIsEmpty(f));
    if (stored.length === 0) {
      metrics.reqsServed.inc({ outcome: 'eose' });
      this.send(eoseFrame(subId));
      return;
    }
    const controller = new AbortController();
    this.queries.set(subId, controller);
    const timer = setTimeout(() => controller.abort(new Error('query deadline')), limits.queryTimeoutMs);
    try {
      const result = await untilAborted(this.deps.reader.read(stored, controller.signal), controller.signal);
      if (this.generations.get(subId) !== generation || this.closed) return;
      for (const item of result.events) this.sendEvent(subId, item.raw);
      if (result.partialReason) this.notice(`partial results for ${subId}: ${result.partialReason}`);
      metrics.reqsServed.inc({ outcome: 'eose' });
      this.send(eoseFrame(subId));
    } catch (err) {
      if (this.generations.get(subId) !== generation || this.closed) return;
      this.log.warn({ err, subId }, 'initial query failed');
      subscriptions.remove(this, subId);
      metrics.subscriptions.set(subscriptions.size);
      refuse(controller.signal.aborted ? 'error: query timed out; try again later' : 'error: could not query stored events; try again later');
    } finally {
      clearTimeout(timer);
      if (this.queries.get(subId) === controller) this.queries.delete(subId);
    }
  }

  private onCloseSub(message: unknown[]): void {
    const subId = message[1];
    if (typeof subId !== 'string') {
      this.notice('invalid: CLOSE needs a subscription id string');
      return;
    }
    this.queries.get(subId)?.abort();
    this.generations.set(subId, (this.generations.get(subId) ?? 0) + 1);
    this.deps.subscriptions.remove(this, subId);
    this.deps.metrics.subscriptions.set(this.deps.subscriptions.size);
  }

  private onClose(): void {
    this.closed = true;
    for (const controller of this.queries.values()) controller.abort();
    this.deps.subscriptions.removeAll(this);
    this.deps.metrics.subscriptions.set(this.deps.subscriptions.size);
  }
}

/** Rejects as soon as the signal aborts, even if the underlying query ignores it (a black-holed database). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
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

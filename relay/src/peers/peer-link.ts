import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { NodeKey } from '../identity/node-key.js';
import type { NegentropyChannel } from '../negentropy/initiator.js';
import { Backoff } from './backoff.js';
import { Heartbeat } from './heartbeat.js';
import { OutboundQueue } from './outbound-queue.js';
import { LinkRequests, type OkResult } from './link-requests.js';
import type { Pacer } from './pacer.js';
import { drainQueue, pushPaced } from './peer-bulk.js';
import { fetchInformation, type PeerInformation } from './peer-info.js';
import { LinkAuth } from './peer-link-auth.js';

export type PeerState = 'connecting' | 'up' | 'suspect' | 'down' | 'banned';

export { OUR_SOFTWARE } from './peer-info.js';
export { AUTH_KIND } from './peer-link-auth.js';
/**
 * Frames from a relay we dial are refused (closed with 1009, before they are buffered whole) past
 * `maxInboundPayload`, at least this much: a NEG-MSG of a responder with a 500 KB frame limit is ~1 MB in hex,
 * events fit max_message_length. Before any identity proof, anyone answering at a peer URL can send them.
 */
export const MIN_INBOUND_PAYLOAD = 4 * 1024 * 1024;
/** Dials that may fail for want of a NIP-11 document before the peer is taken as a relay without one. */
const NIP11_ATTEMPTS = 3;
/**
 * Heartbeats are Nostr frames, not WebSocket pings: a proxy in the path (the chaos sidecar terminates
 * WebSockets) answers pings itself, which would hide a dead or partitioned peer. A REQ for an impossible id
 * with limit 0 is answered by EOSE from the relay itself (any NIP-01 relay), matches no live event, and
 * replaces itself each time (same subscription id).
 */
const HEARTBEAT_SUB = 'peer-hb';
const HEARTBEAT_REQ = JSON.stringify(['REQ', HEARTBEAT_SUB, { ids: ['0'.repeat(64)], limit: 0 }]);
export { RATE_LIMIT_RETRIES } from './peer-bulk.js';

export interface PeerLinkOptions {
  url: string;
  origin: 'configured' | 'learned';
  nodeKey: NodeKey;
  /** The URL we announce (the `peer` tag of our AUTH): how the remote can reach us. */
  ourUrl: () => string;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  queueSize: number;
  /** Largest frame taken from the remote (bytes); at least MIN_INBOUND_PAYLOAD. */
  maxInboundPayload?: number;
  isBanned: (nodeId: string) => boolean;
  /** Paces bulk sends to this peer (queue drain, anti-entropy pushes) to what its peer budget can take. */
  pacer: Pacer;
  /** BIP-340 check of the remote's identity proof. */
  verify: (id: string, pubkey: string, sig: string) => Promise<boolean>;
  /** The remote proved its node id (PEER-PROOF); called before the link is marked up. */
  onProven: (link: PeerLink, nodeId: string) => void;
  /** Counts identity proofs by outcome (proven, missing, refused). */
  onProofOutcome?: (outcome: 'proven' | 'missing' | 'refused') => void;
  logger: Logger;
  onStateChange: (link: PeerLink, from: PeerState, to: PeerState, reason: string) => void;
  /** A live EVENT on our subscription to a relay that does not push to us (third-party peers). */
  onLiveEvent: (link: PeerLink, event: unknown) => void;
}

/**
 * Our outbound connection to one peer relay, spoken in plain Nostr: NIP-11 to learn its node id, NIP-42 AUTH
 * with our node key, EVENT (with PEER-HOPS to our relays) to push, REQ {ids} to fetch, NEG-* to reconcile, REQ/EOSE as
 * heartbeats. Reconnects with backoff until stopped; frames for a peer that is down wait in a bounded queue. The
 * handshake of each connection (PEER-PROVE, AUTH) is peer-link-auth.ts.
 */
export class PeerLink {
  /** 'connecting' until the first dial ends: gossip takes no verdict (partition) on a link still on its first dial. */
  state: PeerState = 'connecting';
  /** The remote's node id, only ever set from a verified PEER-PROOF (never from its unauthenticated NIP-11). */
  remoteNodeId: string | null = null;
  /** Whether the remote proved `remoteNodeId` on the current (or last) connection. */
  identityProven = false;
  remoteIsOurs = false;
  /** The peer's NIP-11 max_message_length, when it told us. */
  remoteMaxMessageLength: number | null = null;
  authenticated = false;
  lastError: string | null = null;
  upSince: number | null = null;
  /** When the link last went down (null: never up, or up now): the relay's own detection time, for experiments. */
  downSince: number | null = null;
  /** Dial attempts since the link was last up. */
  attempts = 0;
  private dialling = false;
  /** Set while the queue drains: live events queue behind it, to keep order. */
  draining = false;
  private nip11Failures = 0;
  private informationKnown = false;
  readonly queue: OutboundQueue;
  readonly heartbeat: Heartbeat;
  private ws: WebSocket | null = null;
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly requests = new LinkRequests((frame) => this.send(frame), () => this.isUp);
  private readonly log: Logger;
  private readonly auth: LinkAuth;

  constructor(readonly options: PeerLinkOptions) {
    this.queue = new OutboundQueue(options.queueSize);
    this.backoff = new Backoff(options.reconnectMinMs, options.reconnectMaxMs);
    this.log = options.logger.child({ peerUrl: options.url });
    this.heartbeat = new Heartbeat(
      options.heartbeatIntervalMs,
      options.heartbeatTimeoutMs,
      () => this.send(HEARTBEAT_REQ),
      (verdict, silentMs) => this.onHeartbeat(verdict, silentMs),
    );
    const { nodeKey, ourUrl, heartbeatTimeoutMs, isBanned, verify, onProofOutcome } = options;
    this.auth = new LinkAuth(this, { nodeKey, ourUrl, heartbeatTimeoutMs, isBanned, verify, onProofOutcome, onProven: (nodeId) => options.onProven(this, nodeId), log: this.log });
  }

  get url(): string {
    return this.options.url;
  }

  get isUp(): boolean {
    return this.state === 'up' || this.state === 'suspect';
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(reason = 'stopped'): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.teardown(reason);
  }

  /** Cuts the link for good (until `unban`): the remote node was banned. */
  ban(reason: string): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.queue.clear();
    this.teardown(reason);
    this.setState('banned', reason);
  }

  unban(): void {
    if (this.state !== 'banned') return;
    this.setState('down', 'unbanned');
    this.backoff.reset();
    this.start();
  }

  /** Sends now when up (and not still draining the queue, to keep order); otherwise queues (bounded). */
  forward(raw: string, id: string, hops: number): void {
    if (this.isUp && !this.draining) this.sendEvent(raw, id, hops);
    else if (this.state !== 'banned') this.queue.push({ id, raw, hops });
  }

  /**
   * A plain NIP-01 `EVENT`. To one of our relays it is preceded by `["PEER-HOPS", id, hops]` (same ordered
   * connection), which carries the hop count without changing the EVENT frame; a third-party relay gets the
   * EVENT alone.
   */
  sendEvent(raw: string, id: string, hops: number): boolean {
    if (this.remoteIsOurs) this.send(`["PEER-HOPS","${id}",${hops}]`);
    return this.send(`["EVENT",${raw}]`);
  }

  /** Sends an event and waits for the peer's OK (anti-entropy and queue draining need to know it landed). */
  pushEvent(raw: string, id: string, hops: number, timeoutMs: number): Promise<OkResult> {
    if (this.remoteIsOurs) this.send(`["PEER-HOPS","${id}",${hops}]`);
    return this.push(`["EVENT",${raw}]`, id, timeoutMs);
  }

  /** Sends the queue (bounded window of OKs awaited; see peer-bulk.ts). */
  drainQueue(): Promise<number> {
    return drainQueue(this);
  }

  /** One bulk event, paced and retried on `rate-limited:` (see peer-bulk.ts). */
  pushPaced(raw: string, id: string, hops: number, timeoutMs: number): Promise<OkResult> {
    return pushPaced(this, raw, id, hops, timeoutMs);
  }

  send(frame: string): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(frame);
    return true;
  }

  /** Sends a frame and waits for the OK with this id. */
  push(frame: string, id: string, timeoutMs: number): Promise<OkResult> {
    return this.requests.push(frame, id, timeoutMs);
  }

  /** REQ with these filters; resolves with every stored event at EOSE, rejects on CLOSED, timeout or link loss. */
  query(filters: unknown[], timeoutMs: number, maxEvents?: number): Promise<unknown[]> {
    return this.requests.query(filters, timeoutMs, maxEvents);
  }

  /** Our NEG-MSG size cap: hex doubles the bytes and the frame must fit the peer's max_message_length. */
  negentropyFrameLimit(): number {
    const room = this.remoteMaxMessageLength === null ? 120_000 : Math.floor((this.remoteMaxMessageLength - 512) / 2);
    return Math.max(4096, Math.min(room, 500_000));
  }

  /** The NIP-77 channel over this link, for the initiator. */
  negentropyChannel(): NegentropyChannel {
    return this.requests.negentropyChannel();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.dialling = true;
    // 'connecting' is the first dial; a peer that was lost stays 'down' while we redial it.
    if (this.state !== 'down') this.setState('connecting', 'dialling');
    else this.log.debug({ attempt: this.attempts + 1 }, 'redialling peer');
    this.attempts++;
    const info = await fetchInformation(this.url, this.log);
    if (this.stopped) return;
    if (!info && this.remoteNodeId === null && ++this.nip11Failures < NIP11_ATTEMPTS) {
      // Without the document we would not know the node id or whether it is one of ours: try again first.
      this.onClosed('NIP-11 document unavailable');
      return;
    }
    if (info) this.applyInformation(info);
    if (this.remoteNodeId && this.options.isBanned(this.remoteNodeId)) {
      this.ban('the node is banned');
      return;
    }
    const ws = new WebSocket(this.url, { maxPayload: Math.max(MIN_INBOUND_PAYLOAD, this.options.maxInboundPayload ?? 0), perMessageDeflate: false, handshakeTimeout: this.options.heartbeatTimeoutMs });
    this.ws = ws;
    const handshake = this.auth.dial({
      close: (code, reason) => {
        if (this.ws === ws) ws.close(code, reason);
      },
      isCurrent: () => this.ws === ws,
      up: (reason) => this.markUp(reason),
    });
    ws.on('open', () => handshake.opened());
    ws.on('message', (data: Buffer) => {
      this.heartbeat.heard();
      let frame: unknown;
      try {
        frame = JSON.parse(data.toString());
      } catch (err) {
        this.log.warn({ err }, 'peer sent a frame that is not JSON');
        return;
      }
      if (!Array.isArray(frame)) return;
      if (!handshake.onFrame(frame)) this.onFrame(frame);
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
      this.log.debug({ err }, 'peer connection error');
    });
    ws.on('close', (code, reason) => {
      handshake.closed();
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClosed(`connection closed (${code}${reason.length ? ' ' + reason.toString() : ''})`);
    });
  }

  private markUp(reason: string): void {
    if (!this.dialling || this.stopped) return;
    this.dialling = false;
    this.attempts = 0;
    this.backoff.reset();
    this.lastError = null;
    this.upSince = Date.now();
    this.downSince = null;
    this.heartbeat.start();
    this.setState('up', reason);
    if (!this.informationKnown) void this.learnIdentityLate();
    if (!this.remoteIsOurs) {
      // A third-party relay does not push to us: subscribe to what it accepts from now on.
      this.send(JSON.stringify(['REQ', 'peer-live', { since: Math.floor(Date.now() / 1000) }]));
    }
  }

  private onFrame(frame: unknown[]): void {
    if (this.requests.onFrame(frame)) return;
    const [type, a] = frame;
    if (type === 'EVENT' && a === 'peer-live') {
      this.options.onLiveEvent(this, frame[2]);
    } else if ((type === 'EOSE' || type === 'CLOSED') && a === HEARTBEAT_SUB) {
      this.heartbeat.pong();
    } else if (type === 'NOTICE') {
      this.log.debug({ notice: String(a).slice(0, 500) }, 'peer notice');
    }
  }

  private onHeartbeat(verdict: 'alive' | 'suspect' | 'dead', silentMs: number): void {
    if (verdict === 'dead') {
      this.log.warn({ silentMs }, 'peer heartbeat timed out');
      const ws = this.ws;
      this.ws = null;
      ws?.terminate();
      this.onClosed(`heartbeat timeout (silent ${silentMs} ms)`);
    } else if (verdict === 'suspect' && this.state === 'up') {
      this.setState('suspect', `silent for ${silentMs} ms`);
    } else if (verdict === 'alive' && this.state === 'suspect') {
      this.setState('up', 'heard again');
    }
  }

  private onClosed(reason: string): void {
    // A dial where the socket failed too says nothing about the NIP-11 document: do not count it.
    if (this.upSince === null && reason !== 'NIP-11 document unavailable') this.nip11Failures = 0;
    this.dialling = false;
    this.heartbeat.stop();
    this.auth.linkLost();
    if (this.upSince !== null) this.downSince = Date.now();
    this.upSince = null;
    this.requests.linkLost();
    if (this.state === 'banned') return;
    this.lastError = reason;
    this.setState('down', reason);
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.log.debug({ delayMs: delay }, 'peer reconnect scheduled');
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private teardown(reason: string): void {
    const ws = this.ws;
    this.ws = null;
    this.heartbeat.stop();
    if (ws) {
      ws.terminate();
      this.onClosed(reason);
    }
  }

  private applyInformation(info: PeerInformation): void {
    this.nip11Failures = 0;
    this.informationKnown = true;
    // NIP-11 `pubkey` is not proof of anything: the node id comes from PEER-PROOF only.
    this.remoteIsOurs = info.isOurs;
    this.remoteMaxMessageLength = info.maxMessageLength;
  }

  /** Up without a NIP-11 document (it failed while the WebSocket worked): ask again, now the path works. */
  private async learnIdentityLate(): Promise<void> {
    const info = await fetchInformation(this.url, this.log);
    if (!info || !this.isUp) return;
    this.applyInformation(info);
    if (!this.remoteIsOurs) return;
    this.send(JSON.stringify(['CLOSE', 'peer-live']));
    if (await this.auth.proveRemote()) this.log.info({ nodeId: this.remoteNodeId }, 'peer identity proven after link up');
    else if (this.state !== 'banned') this.ws?.close(1008, 'identity not proven');
  }

  private setState(to: PeerState, reason: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.options.onStateChange(this, from, to, reason);
  }
}

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
import { CLIENT_ROLE_MESSAGE } from './peer-auth.js';
import { fetchInformation, type PeerInformation } from './peer-info.js';
import { requestProof } from './peer-proof.js';

export type PeerState = 'connecting' | 'up' | 'suspect' | 'down' | 'banned';

export { OUR_SOFTWARE } from './peer-info.js';
/** NIP-42 kind. */
export const AUTH_KIND = 22242;
/** Our messages must fit the peer's max_message_length; events can be large, the rest is small. */
const MAX_INBOUND_PAYLOAD = 64 * 1024 * 1024;
/** How long we wait for a relay's AUTH challenge before treating it as a relay that does not use NIP-42. */
const AUTH_CHALLENGE_WAIT_MS = 2000;
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
 * heartbeats. Reconnects with backoff until stopped; frames for a peer that is down wait in a bounded queue.
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
  private proofWaiter: ((event: unknown) => void) | undefined;
  private readonly log: Logger;

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
    const ws = new WebSocket(this.url, { maxPayload: MAX_INBOUND_PAYLOAD, perMessageDeflate: false, handshakeTimeout: this.options.heartbeatTimeoutMs });
    this.ws = ws;
    let challengeTimer: NodeJS.Timeout | undefined;
    // Our relays prove their node id first (PEER-PROVE); then we answer the AUTH challenge, or go up without one.
    let proven = !this.remoteIsOurs;
    let challenge: string | undefined;
    let noChallenge = false;
    let answered = false;
    const proceed = () => {
      if (!proven || answered || this.ws !== ws) return;
      if (challenge !== undefined) {
        answered = true;
        this.authenticate(challenge);
      } else if (noChallenge) {
        answered = true;
        this.markUp('no AUTH challenge (relay without NIP-42)');
      }
    };
    ws.on('open', () => {
      // A relay that wants NIP-42 sends its challenge at once; one that does not is a plain peer.
      challengeTimer = setTimeout(() => {
        noChallenge = true;
        proceed();
      }, AUTH_CHALLENGE_WAIT_MS);
      if (this.remoteIsOurs) {
        void this.proveRemote().then((ok) => {
          if (!ok) {
            if (this.ws === ws) ws.close(1008, 'identity not proven');
            return;
          }
          proven = true;
          proceed();
        });
      }
    });
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
      if (frame[0] === 'AUTH' && typeof frame[1] === 'string') {
        clearTimeout(challengeTimer);
        if (challenge === undefined) challenge = frame[1].slice(0, 256);
        proceed();
        return;
      }
      if (frame[0] === 'PEER-PROOF') {
        const waiter = this.proofWaiter;
        this.proofWaiter = undefined;
        waiter?.(frame[1]);
        return;
      }
      this.onFrame(frame);
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
      this.log.debug({ err }, 'peer connection error');
    });
    ws.on('close', (code, reason) => {
      clearTimeout(challengeTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClosed(`connection closed (${code}${reason.length ? ' ' + reason.toString() : ''})`);
    });
  }

  /**
   * Asks the remote to prove its node id (peer-proof.ts). On success the remote's node id is known for certain; a
   * different key than last time is a different node to us.
   */
  private async proveRemote(): Promise<boolean> {
    const timeoutMs = Math.max(5000, this.options.heartbeatTimeoutMs);
    const result = await requestProof(this.url, timeoutMs, (frame) => this.send(frame), (waiter) => (this.proofWaiter = waiter), this.options.verify);
    if ('error' in result) {
      this.lastError = result.missing ? 'the peer did not prove its node id (no PEER-PROOF)' : `the peer's identity proof was refused: ${result.error}`;
      this.log.warn({ reason: result.error }, result.missing ? this.lastError : 'peer identity proof refused');
      this.options.onProofOutcome?.(result.missing ? 'missing' : 'refused');
      return false;
    }
    if (this.remoteNodeId !== null && this.remoteNodeId !== result.nodeId) this.log.warn({ was: this.remoteNodeId, now: result.nodeId }, 'peer node id changed');
    this.remoteNodeId = result.nodeId;
    this.identityProven = true;
    this.options.onProofOutcome?.('proven');
    this.options.onProven(this, result.nodeId);
    if (this.options.isBanned(result.nodeId)) {
      this.ban('the node is banned');
      return false;
    }
    return true;
  }

  private authenticate(challenge: string): void {
    const auth = this.options.nodeKey.sign({
      kind: AUTH_KIND,
      created_at: Math.floor(Date.now() / 1000),
      // relay: the URL we dialled (through a proxy it is the proxy's); peer: where the remote can reach us.
      tags: [['relay', this.url], ['challenge', challenge], ['peer', this.options.ourUrl()]],
      content: '',
    });
    // The first signature check of a fresh relay may wait for its verifier workers, and a relay whose own link to
    // us has not proven our node id yet waits up to 5 s before deciding our role: allow for both.
    void this.push(JSON.stringify(['AUTH', auth]), auth.id, Math.max(10_000, this.options.heartbeatTimeoutMs)).then((r) => {
      if (r.ok && r.message === CLIENT_ROLE_MESSAGE && this.remoteIsOurs) {
        // It does not (yet) know us as a peer: events we pushed would count as a client's. Retry with backoff;
        // once its own link to us has proven our node id, it accepts us.
        this.lastError = 'the peer accepted our AUTH only as a client (our node id is not on its allow-list)';
        this.log.warn(this.lastError);
        this.ws?.close(1000, 'not accepted as a peer');
      } else if (r.ok) {
        this.authenticated = true;
        this.markUp('authenticated');
      } else {
        this.lastError = `AUTH refused: ${r.message}`;
        this.log.warn({ reason: r.message }, 'peer refused our AUTH');
        this.ws?.close(1000, 'auth refused');
      }
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
    this.authenticated = false;
    const proofWaiter = this.proofWaiter;
    this.proofWaiter = undefined;
    proofWaiter?.(undefined);
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
    if (await this.proveRemote()) this.log.info({ nodeId: this.remoteNodeId }, 'peer identity proven after link up');
    else if (this.state !== 'banned') this.ws?.close(1008, 'identity not proven');
  }

  private setState(to: PeerState, reason: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.options.onStateChange(this, from, to, reason);
  }
}

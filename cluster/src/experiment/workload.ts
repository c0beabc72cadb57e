/**
 * The experiment's workload: the event mix (event-mix.ts) published to every node in turn at a fixed rate,
 * throughout the experiment, over plain NIP-01 WebSockets straight to each relay's client port (clients do not go
 * through the sidecar). An event counts as acknowledged only on `["OK", id, true, ...]`; every attempt is recorded
 * with its outcome and times, for availability and publish→OK latency.
 */
import WebSocket from 'ws';
import { EventMix, type EventRole, type MixedEvent, type Published } from './event-mix.js';
import { SignerPool } from './signer.js';

export type Outcome = 'acked' | 'refused' | 'timeout' | 'closed' | 'unsent';

/** One publish the workload tried: what it was, where, when, and what came of it. */
export interface Attempt {
  seq: number;
  node: string;
  published: Published;
  /** When the workload tried (also for publishes not sent because the connection was down). */
  at: number;
  outcome: Outcome | 'pending';
  doneAt: number | null;
  message: string;
}

export interface Ack {
  id: string;
  node: string;
  seq: number;
  role: EventRole;
  sentAt: number;
  ackAt: number;
}

export interface WorkloadStats {
  sent: number;
  acked: number;
  rejected: number;
  timedOut: number;
  /** Not sent because the node's connection was down (crashed relay, reconnecting). */
  unsent: number;
  /** Not even tried: the runner could not sign fast enough (its own limit, not the relays'; shown so it is seen). */
  behind: number;
  rejections: Record<string, number>;
  /** Publishes per role (regular, replaceable, addressable, deletion). */
  roles: Record<string, number>;
}

interface Pending {
  attempt: Attempt;
  timer: NodeJS.Timeout;
}

const ACK_TIMEOUT_MS = 10_000;

/** One client connection to one relay that reconnects when the relay goes away. */
class NodeClient {
  private ws: WebSocket | null = null;
  open = false;
  private closed = false;
  readonly pending = new Map<string, Pending>();

  constructor(readonly node: string, private readonly url: string, private readonly onResult: (p: Pending, outcome: Outcome, message: string) => void) {}

  connect(): void {
    if (this.closed) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.on('open', () => (this.open = true));
    ws.on('message', (data) => this.handle(String(data)));
    ws.on('error', () => {
      // The close event follows and schedules the reconnect; the error itself is a refused or dropped connection.
    });
    ws.on('close', () => {
      this.open = false;
      // In-flight events on a dropped connection get no OK: they are not acknowledged.
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        this.onResult(p, 'closed', 'connection closed');
      }
      this.pending.clear();
      if (!this.closed) setTimeout(() => this.connect(), 250);
    });
  }

  private handle(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(msg) || msg[0] !== 'OK') return;
    const p = this.pending.get(String(msg[1]));
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(p.attempt.published.event.id);
    this.onResult(p, msg[2] === true ? 'acked' : 'refused', String(msg[3] ?? ''));
  }

  send(event: MixedEvent, attempt: Attempt): boolean {
    if (!this.open || !this.ws) return false;
    const p: Pending = {
      attempt,
      timer: setTimeout(() => {
        this.pending.delete(event.id);
        this.onResult(p, 'timeout', 'timeout');
      }, ACK_TIMEOUT_MS),
    };
    this.pending.set(event.id, p);
    this.ws.send(JSON.stringify(['EVENT', event]));
    return true;
  }

  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  close(): void {
    this.closed = true;
    this.ws?.terminate();
  }
}

export interface WorkloadOptions {
  nodes: Array<{ name: string; relayUrl: string }>;
  /** Events per second across all nodes. */
  rate: number;
  /** Tag value that marks this run's events (a `t` tag). */
  tag: string;
  /** Size of a regular note, bytes (default 700). */
  eventBytes?: number;
}

export class Workload {
  readonly acks: Ack[] = [];
  readonly attempts: Attempt[] = [];
  readonly stats: WorkloadStats = { sent: 0, acked: 0, rejected: 0, timedOut: 0, unsent: 0, behind: 0, rejections: {}, roles: {} };
  private readonly signer = new SignerPool(2);
  /** The first signing-thread failure, if any. */
  signerError: string | null = null;
  readonly mix: EventMix;
  private readonly clients: NodeClient[];
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  /** Nodes not published to (a relay killed on purpose): their turns go to the next node. */
  private readonly skipped = new Set<string>();

  constructor(private readonly o: WorkloadOptions) {
    this.mix = new EventMix({ tag: o.tag, eventBytes: o.eventBytes ?? 700, updateShare: 0.05, deletionShare: 0.03 });
    this.clients = o.nodes.map((n) => new NodeClient(n.name, n.relayUrl, (p, outcome, message) => this.result(p, outcome, message)));
  }

  get pubkeys(): string[] {
    return this.mix.pubkeys;
  }

  private result(p: Pending, outcome: Outcome, message: string): void {
    const a = p.attempt;
    a.outcome = outcome;
    a.doneAt = Date.now();
    a.message = message;
    if (outcome === 'acked') {
      this.stats.acked++;
      this.acks.push({ id: a.published.event.id, node: a.node, seq: a.seq, role: a.published.role, sentAt: a.at, ackAt: a.doneAt });
      this.mix.acknowledged(a.published);
      return;
    }
    if (outcome === 'timeout') this.stats.timedOut++;
    else this.stats.rejected++;
    const reason = message.split(':')[0] || 'rejected';
    this.stats.rejections[reason] = (this.stats.rejections[reason] ?? 0) + 1;
  }

  /** Connects to every node and waits until each connection is open. */
  async start(): Promise<void> {
    for (const c of this.clients) c.connect();
    const deadline = Date.now() + 10_000;
    while (this.clients.some((c) => !c.open)) {
      if (Date.now() > deadline) throw new Error('workload: could not connect to every relay within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.signer.ready();
    const interval = Math.max(5, Math.round(1000 / this.o.rate));
    const startedAt = Date.now();
    // Timers run late on a busy machine: each tick publishes what is due by the clock (bounded), so the rate holds.
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * this.o.rate);
      for (let burst = 0; this.seq < due && burst < 200; burst++) this.publishOne();
    }, interval);
  }

  /** Stop sending to this node (it is being killed on purpose); its share goes to the others. */
  skip(node: string): void {
    this.skipped.add(node);
  }

  unskip(node: string): void {
    this.skipped.delete(node);
  }

  private publishOne(): void {
    const seq = this.seq++;
    // A backlog the threads cannot clear: the runner is the bottleneck, and says so. Generous, because a runner's
    // event loop held up for a second (GC, a big REQ answer) leaves signed events unread and then catches up in a
    // burst: that is not a signing limit.
    if (this.signer.backlog > Math.max(500, 2 * this.o.rate)) {
      this.stats.behind++;
      return;
    }
    const unsigned = this.mix.next();
    void this.signer.sign(unsigned.template, unsigned.key).then((event) => {
      if (!this.timer) return;
      const live = this.clients.filter((c) => !this.skipped.has(c.node));
      const pool = live.length > 0 ? live : this.clients;
      const client = pool[seq % pool.length]!;
      const published: Published = { event, role: unsigned.role, stream: unsigned.stream, deletes: unsigned.deletes };
      const attempt: Attempt = { seq, node: client.node, published, at: Date.now(), outcome: 'pending', doneAt: null, message: '' };
      this.attempts.push(attempt);
      this.stats.roles[published.role] = (this.stats.roles[published.role] ?? 0) + 1;
      if (client.send(published.event, attempt)) {
        this.stats.sent++;
      } else {
        this.stats.unsent++;
        attempt.outcome = 'unsent';
        attempt.doneAt = attempt.at;
        attempt.message = 'connection down';
      }
    }, (err: Error) => {
      // A signing thread died: the runner's own failure, counted with "behind" and named in the summary.
      this.stats.behind++;
      this.signerError ??= err.message;
    });
  }

  /** Stops publishing, waits for outstanding OKs, closes the connections. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.clients.map((c) => c.drain(ACK_TIMEOUT_MS + 1000)));
    for (const c of this.clients) c.close();
    await this.signer.close();
  }
}

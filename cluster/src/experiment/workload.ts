/**
 * The experiment's workload: signed kind-1 events published to every node in turn, throughout the experiment,
 * over plain NIP-01 WebSockets straight to each relay's client port (clients do not go through the sidecar).
 * An event counts as acknowledged only on `["OK", id, true, ...]`; everything else is recorded as not acknowledged.
 */
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import WebSocket from 'ws';

export interface Ack {
  id: string;
  node: string;
  seq: number;
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
  rejections: Record<string, number>;
}

interface Pending {
  id: string;
  seq: number;
  sentAt: number;
  timer: NodeJS.Timeout;
}

const ACK_TIMEOUT_MS = 10_000;

/** One client connection to one relay that reconnects when the relay goes away. */
class NodeClient {
  private ws: WebSocket | null = null;
  open = false;
  private closed = false;
  readonly pending = new Map<string, Pending>();

  constructor(readonly node: string, private readonly url: string, private readonly onResult: (node: string, p: Pending, ok: boolean, message: string) => void) {}

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
        this.onResult(this.node, p, false, 'connection closed');
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
    this.pending.delete(p.id);
    this.onResult(this.node, p, msg[2] === true, String(msg[3] ?? ''));
  }

  send(event: { id: string }, seq: number): boolean {
    if (!this.open || !this.ws) return false;
    const p: Pending = {
      id: event.id,
      seq,
      sentAt: Date.now(),
      timer: setTimeout(() => {
        this.pending.delete(event.id);
        this.onResult(this.node, p, false, 'timeout');
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
}

export class Workload {
  readonly acks: Ack[] = [];
  readonly stats: WorkloadStats = { sent: 0, acked: 0, rejected: 0, timedOut: 0, unsent: 0, rejections: {} };
  readonly pubkey: string;
  private readonly secret = generateSecretKey();
  private readonly clients: NodeClient[];
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;

  constructor(private readonly o: WorkloadOptions) {
    this.pubkey = getPublicKey(this.secret);
    this.clients = o.nodes.map((n) => new NodeClient(n.name, n.relayUrl, (node, p, ok, message) => this.result(node, p, ok, message)));
  }

  private result(node: string, p: Pending, ok: boolean, message: string): void {
    if (ok) {
      this.stats.acked++;
      this.acks.push({ id: p.id, node, seq: p.seq, sentAt: p.sentAt, ackAt: Date.now() });
      return;
    }
    if (message === 'timeout') this.stats.timedOut++;
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
    const interval = Math.max(5, Math.round(1000 / this.o.rate));
    const startedAt = Date.now();
    // Timers run late on a busy machine: each tick publishes what is due by the clock (bounded), so the rate holds.
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * this.o.rate);
      for (let burst = 0; this.seq < due && burst < 50; burst++) this.publishOne();
    }, interval);
  }

  private publishOne(): void {
    const seq = this.seq++;
    const client = this.clients[seq % this.clients.length]!;
    const event = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['t', this.o.tag]], content: `${this.o.tag} #${seq}` }, this.secret);
    if (client.send(event, seq)) this.stats.sent++;
    else this.stats.unsent++;
  }

  /** Stops publishing, waits for outstanding OKs, closes the connections. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.clients.map((c) => c.drain(ACK_TIMEOUT_MS + 1000)));
    for (const c of this.clients) c.close();
  }
}

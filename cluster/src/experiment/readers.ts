/**
 * Readers: one live subscription per node (REQ for the workload's authors, from the run's start) held open through
 * the experiment, reconnecting when the relay goes away. They check what a subscriber sees: every event a node
 * acknowledged while its reader was connected must reach that reader live (NIP-01: a stored event is broadcast to
 * matching subscriptions). Events relayed from other nodes are counted too (informative).
 */
import WebSocket from 'ws';

export interface ReaderWindow {
  from: number;
  /** null: still connected. */
  to: number | null;
}

export interface ReaderView {
  node: string;
  seen: Map<string, number>;
  windows: ReaderWindow[];
}

class Reader {
  readonly seen = new Map<string, number>();
  readonly windows: ReaderWindow[] = [];
  private ws: WebSocket | null = null;
  private closed = false;

  constructor(readonly node: string, private readonly url: string, private readonly authors: string[], private readonly since: number) {}

  connect(): void {
    if (this.closed) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let window: ReaderWindow | null = null;
    ws.on('open', () => ws.send(JSON.stringify(['REQ', 'reader', { authors: this.authors, since: this.since }])));
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (!Array.isArray(msg) || msg[1] !== 'reader') return;
      // Live from EOSE on: what was stored before the subscription is not a live delivery.
      if (msg[0] === 'EOSE' && !window) {
        window = { from: Date.now(), to: null };
        this.windows.push(window);
      } else if (msg[0] === 'EVENT' && typeof (msg[2] as { id?: unknown })?.id === 'string') {
        const id = (msg[2] as { id: string }).id;
        if (!this.seen.has(id)) this.seen.set(id, Date.now());
      } else if (msg[0] === 'CLOSED') {
        ws.terminate();
      }
    });
    ws.on('error', () => {
      // The close event follows and reconnects.
    });
    ws.on('close', () => {
      if (window) window.to = Date.now();
      if (!this.closed) setTimeout(() => this.connect(), 250);
    });
  }

  close(): void {
    this.closed = true;
    for (const w of this.windows) if (w.to === null) w.to = Date.now();
    this.ws?.terminate();
  }
}

export class Readers {
  private readonly readers: Reader[];

  constructor(nodes: Array<{ name: string; relayUrl: string }>, authors: string[], since: number) {
    this.readers = nodes.map((n) => new Reader(n.name, n.relayUrl, authors, since));
  }

  start(): void {
    for (const r of this.readers) r.connect();
  }

  /** Waits until every reader has its subscription live (EOSE), or throws after timeoutMs. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.readers.some((r) => r.windows.length === 0)) {
      if (Date.now() > deadline) throw new Error(`readers: no live subscription on ${this.readers.filter((r) => r.windows.length === 0).map((r) => `relay-${r.node}`).join(', ')} within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stop(): void {
    for (const r of this.readers) r.close();
  }

  views(): ReaderView[] {
    return this.readers.map((r) => ({ node: r.node, seen: r.seen, windows: r.windows }));
  }
}

/** Was the reader connected for the whole of [from, to]? */
export function coveredBy(windows: ReaderWindow[], from: number, to: number): boolean {
  return windows.some((w) => w.from <= from && (w.to === null || w.to >= to));
}

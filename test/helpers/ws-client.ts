import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';

export type Frame = unknown[];
export interface QueryResult {
  events: Array<Record<string, unknown>>;
  closed?: string;
  eose: boolean;
}

/** A raw NIP-01 client over `ws`, for precise protocol tests (malformed frames, ordering, limits). */
export class RawClient {
  readonly frames: Frame[] = [];
  private readonly waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(frame)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(frame);
        }
      }
    });
    ws.on('close', (code) => (this.closeCode = code));
  }

  static async connect(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawClient(ws);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for the next frame (including already received ones not yet consumed by `take`) matching. */
  next(match: (f: Frame) => boolean, timeoutMs = 10_000, what = 'frame'): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(timer);
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f);
        },
      });
    });
  }

  async publish(event: { id: string }, timeoutMs?: number): Promise<{ ok: boolean; message: string }> {
    this.send(['EVENT', event]);
    const frame = await this.next((f) => f[0] === 'OK' && f[1] === event.id, timeoutMs, `OK for ${event.id}`);
    return { ok: frame[2] as boolean, message: frame[3] as string };
  }

  /** Sends a REQ, collects stored events until EOSE and CLOSEs it; resolves `closed` instead if the relay refuses it. */
  query(subId: string, ...filters: unknown[]): Promise<QueryResult> {
    return this.collect(subId, filters, true);
  }

  /** Like `query`, but leaves the subscription open for live events. */
  subscribe(subId: string, ...filters: unknown[]): Promise<QueryResult> {
    return this.collect(subId, filters, false);
  }

  private async collect(subId: string, filters: unknown[], closeAfterEose: boolean): Promise<QueryResult> {
    const events: Array<Record<string, unknown>> = [];
    this.send(['REQ', subId, ...filters]);
    for (;;) {
      const frame = await this.next((f) => f[1] === subId && (f[0] === 'EVENT' || f[0] === 'EOSE' || f[0] === 'CLOSED'), 15_000, `answer to REQ ${subId}`);
      if (frame[0] === 'EVENT') events.push(frame[2] as Record<string, unknown>);
      else if (frame[0] === 'EOSE') {
        if (closeAfterEose) this.send(['CLOSE', subId]);
        return { events, eose: true };
      } else return { events, closed: frame[2] as string, eose: false };
    }
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.close();
    await closed;
  }
}

const defaultKey = generateSecretKey();

/** Signs an event with nostr-tools (an independent implementation of NIP-01 ids and BIP-340). */
export function signed(
  template: { kind?: number; content?: string; tags?: string[][]; created_at?: number } = {},
  secretKey: Uint8Array = defaultKey,
) {
  // A plain copy: nostr-tools marks its events with a `verified` symbol that deep comparisons would see.
  return plain(finalizeEvent(
    {
      kind: template.kind ?? 1,
      content: template.content ?? `hello ${Math.random()}`,
      tags: template.tags ?? [],
      created_at: template.created_at ?? Math.floor(Date.now() / 1000),
    },
    secretKey,
  ));
}

function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

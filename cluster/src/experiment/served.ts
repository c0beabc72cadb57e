/**
 * What a relay serves, asked the way a client asks: REQ by ids (chunked to the relay's per-filter and per-REQ
 * limits), repeats kept so the checker can see an event served twice for one REQ. One connection per node,
 * reopened when it drops, queries one at a time.
 */
import WebSocket from 'ws';

/**
 * Within our relay's defaults: 1000 values per filter list, 10 filters per REQ, and a 128 KiB message, which is
 * what binds: 1500 ids of 67 bytes each are ~100 KB.
 */
const IDS_PER_FILTER = 500;
const FILTERS_PER_REQ = 3;

export interface ServedEvent {
  id: string;
  raw: Record<string, unknown>;
}

export class ServedClient {
  private ws: WebSocket | null = null;
  private opening: Promise<WebSocket> | null = null;
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly url: string, private readonly timeoutMs = 10_000) {}

  private open(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.opening ??= new Promise<WebSocket>((resolveWs, reject) => {
      const ws = new WebSocket(this.url);
      const timer = setTimeout(() => (ws.terminate(), reject(new Error(`cannot connect to ${this.url} within ${this.timeoutMs} ms`))), this.timeoutMs);
      ws.once('open', () => (clearTimeout(timer), (this.ws = ws), resolveWs(ws)));
      ws.once('error', (err) => (clearTimeout(timer), reject(err)));
      ws.on('close', () => {
        if (this.ws === ws) this.ws = null;
      });
    }).finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  /** One REQ (up to FILTERS_PER_REQ filters) until EOSE: the events served, in order, repeats kept. */
  private async req(filters: Array<Record<string, unknown>>): Promise<ServedEvent[]> {
    const ws = await this.open();
    const sub = `q${++this.seq}`;
    return new Promise((resolveEvents, reject) => {
      const got: ServedEvent[] = [];
      const done = (err?: Error) => {
        clearTimeout(timer);
        ws.off('message', onMessage);
        ws.off('close', onClose);
        if (err) reject(err);
        else resolveEvents(got);
      };
      const onMessage = (data: WebSocket.RawData) => {
        let msg: unknown;
        try {
          msg = JSON.parse(String(data));
        } catch {
          return;
        }
        // A NOTICE answers a REQ the relay could not parse (too large, too many filters): fail now, not at the deadline.
        if (Array.isArray(msg) && msg[0] === 'NOTICE') return done(new Error(`REQ on ${this.url} refused: NOTICE ${String(msg[1])}`));
        if (!Array.isArray(msg) || msg[1] !== sub) return;
        if (msg[0] === 'EVENT' && typeof (msg[2] as { id?: unknown })?.id === 'string') got.push({ id: (msg[2] as { id: string }).id, raw: msg[2] as Record<string, unknown> });
        else if (msg[0] === 'EOSE') {
          ws.send(JSON.stringify(['CLOSE', sub]));
          done();
        } else if (msg[0] === 'CLOSED') done(new Error(`REQ on ${this.url} CLOSED: ${String(msg[2])}`));
      };
      const onClose = () => done(new Error(`connection to ${this.url} closed during a REQ`));
      const timer = setTimeout(() => done(new Error(`REQ on ${this.url} got no EOSE within ${this.timeoutMs} ms`)), this.timeoutMs);
      ws.on('message', onMessage);
      ws.on('close', onClose);
      ws.send(JSON.stringify(['REQ', sub, ...filters]));
    });
  }

  /** The events the relay serves for these ids, one REQ per FILTERS_PER_REQ × IDS_PER_FILTER ids, run one at a time. */
  byIds(ids: string[]): Promise<ServedEvent[]> {
    const run = async () => {
      const out: ServedEvent[] = [];
      for (let i = 0; i < ids.length; i += IDS_PER_FILTER * FILTERS_PER_REQ) {
        const filters: Array<Record<string, unknown>> = [];
        for (let j = i; j < Math.min(ids.length, i + IDS_PER_FILTER * FILTERS_PER_REQ); j += IDS_PER_FILTER) {
          const chunk = ids.slice(j, j + IDS_PER_FILTER);
          filters.push({ ids: chunk, limit: chunk.length });
        }
        out.push(...(await this.req(filters)));
      }
      return out;
    };
    const result = this.chain.then(run, run);
    this.chain = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
  }
}

/** Per node, the ids of `ids` it does not serve yet. */
export async function unserved(clients: ServedClient[], names: string[], ids: Map<string, Set<string>>): Promise<void> {
  await Promise.all(clients.map(async (c, i) => {
    const missing = ids.get(names[i]!)!;
    if (missing.size === 0) return;
    for (const e of await c.byIds([...missing])) missing.delete(e.id);
  }));
}

// A minimal third-party-style NIP-01 relay (no NIP-42, no NIP-77), in memory: what nostream and most public relays
// look like to our peer links. EVENT (signature checked, OK), REQ with ids/authors/kinds/#tags/since/until/limit
// answered newest first then EOSE and kept live, CLOSE, NIP-11. NEG-OPEN is answered with a NOTICE (`neg: 'notice'`,
// nostream's behaviour) or never answered at all (`neg: 'ignore'`). Stop and start it on the same port to make it
// unreachable without losing its events.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { verifyEvent, type Event } from 'nostr-tools/pure';
import { WebSocketServer, type WebSocket } from 'ws';

export interface PlainRelayOptions {
  neg: 'notice' | 'ignore';
  /** Largest `limit` served (larger ones are clamped, as many relays do). */
  maxLimit?: number;
  port?: number;
}

type Filter = Record<string, unknown>;

export interface PlainRelay {
  url: string;
  port: number;
  /** Events held, by id. */
  events: Map<string, Event>;
  /** Frames of types we count, e.g. how many NEG-OPEN arrived. */
  received: Map<string, number>;
  stop(): Promise<void>;
  start(): Promise<void>;
  has(id: string): boolean;
}

function matches(e: Event, f: Filter): boolean {
  if (Array.isArray(f.ids) && !f.ids.includes(e.id)) return false;
  if (Array.isArray(f.authors) && !f.authors.includes(e.pubkey)) return false;
  if (Array.isArray(f.kinds) && !f.kinds.includes(e.kind)) return false;
  if (typeof f.since === 'number' && e.created_at < f.since) return false;
  if (typeof f.until === 'number' && e.created_at > f.until) return false;
  for (const [key, values] of Object.entries(f)) {
    if (!/^#[a-zA-Z]$/.test(key) || !Array.isArray(values)) continue;
    if (!e.tags.some((t) => t[0] === key.slice(1) && values.includes(t[1]))) return false;
  }
  return true;
}

const isEphemeral = (kind: number) => kind >= 20000 && kind < 30000;

export async function startPlainRelay(options: PlainRelayOptions): Promise<PlainRelay> {
  const maxLimit = options.maxLimit ?? 500;
  const events = new Map<string, Event>();
  const received = new Map<string, number>();
  const subs = new Map<WebSocket, Map<string, Filter[]>>();
  let http: Server | null = null;
  let wss: WebSocketServer | null = null;
  let port = options.port ?? 0;

  const send = (ws: WebSocket, frame: unknown[]) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
  };

  const onMessage = (ws: WebSocket, data: Buffer) => {
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return send(ws, ['NOTICE', 'error: not JSON']);
    }
    if (!Array.isArray(frame) || typeof frame[0] !== 'string') return send(ws, ['NOTICE', 'error: not a message']);
    const type = frame[0];
    received.set(type, (received.get(type) ?? 0) + 1);
    if (type === 'EVENT') {
      const e = frame[1] as Event;
      if (!e || typeof e !== 'object' || !verifyEvent(e)) return send(ws, ['OK', String(e?.id ?? ''), false, 'invalid: bad event']);
      if (events.has(e.id)) return send(ws, ['OK', e.id, true, 'duplicate: already have this event']);
      if (!isEphemeral(e.kind)) events.set(e.id, e);
      send(ws, ['OK', e.id, true, '']);
      for (const [client, bySub] of subs) {
        for (const [subId, filters] of bySub) if (filters.some((f) => matches(e, f))) send(client, ['EVENT', subId, e]);
      }
    } else if (type === 'REQ') {
      const subId = String(frame[1]);
      const filters = frame.slice(2) as Filter[];
      subs.get(ws)!.set(subId, filters);
      const out = new Map<string, Event>();
      const sorted = [...events.values()].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
      for (const f of filters) {
        const limit = Math.min(typeof f.limit === 'number' ? f.limit : maxLimit, maxLimit);
        let n = 0;
        for (const e of sorted) {
          if (n >= limit) break;
          if (matches(e, f)) {
            out.set(e.id, e);
            n++;
          }
        }
      }
      for (const e of out.values()) send(ws, ['EVENT', subId, e]);
      send(ws, ['EOSE', subId]);
    } else if (type === 'CLOSE') {
      subs.get(ws)?.delete(String(frame[1]));
    } else if (options.neg === 'notice') {
      // nostream: an unknown message type is answered with a NOTICE that names no subscription.
      send(ws, ['NOTICE', `error: unknown message type ${type.slice(0, 20)}`]);
    }
    // neg 'ignore': NEG-OPEN, NEG-MSG, NEG-CLOSE and anything else unknown go unanswered.
  };

  const start = async () => {
    http = createServer((_req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('content-type', 'application/nostr+json');
      res.end(JSON.stringify({ name: 'plain test relay', software: 'plain-relay', supported_nips: [1, 11], limitation: { max_limit: maxLimit } }));
    });
    wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws) => {
      subs.set(ws, new Map());
      ws.on('message', (data: Buffer) => onMessage(ws, data));
      ws.on('close', () => subs.delete(ws));
    });
    await new Promise<void>((resolve, reject) => {
      http!.once('error', reject);
      http!.listen(port, '127.0.0.1', () => resolve());
    });
    port = (http.address() as { port: number }).port;
  };

  await start();
  return {
    get url() {
      return `ws://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    events,
    received,
    has: (id) => events.has(id),
    start,
    async stop() {
      for (const ws of subs.keys()) ws.terminate();
      subs.clear();
      await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
      http?.closeAllConnections();
      await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
      wss = null;
      http = null;
    },
  };
}

/**
 * ws link: WebSocket and plain HTTP (e.g. a NIP-11 document) to a relay.
 *
 *   raw tcp accept ──▶ accept hooks (partition...) ──▶ http.Server
 *        ├─ request ──▶ http-proxy (keep-alive agent) ──▶ upstream HTTP
 *        └─ upgrade ──▶ dial upstream with `ws` (subprotocols, headers) ──▶ on open, accept the client with `ws`
 *                        messages: client ws ⇄ Pipe (faults see one message at a time) ⇄ upstream ws
 *
 * The WebSocket is terminated on both sides so message faults (drop,
 * duplicate, reorder, Nostr-aware corrupt) act on whole messages.
 */
import http from 'node:http';
import net from 'node:net';
import httpProxy from 'http-proxy';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { Connection, type Endpoint } from './connection.js';
import { Link, type LinkContext } from './link.js';
import type { Chunk } from '../faults/contract.js';
import { formatHostPort } from './address.js';

const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;
const MAX_PAYLOAD = 64 << 20;
/** Request headers worth carrying to the upstream handshake; hop-by-hop ones are ws's business. */
const FORWARDED_HEADERS = ['origin', 'user-agent', 'authorization', 'cookie', 'x-forwarded-for', 'x-real-ip'];

/** Most messages kept from the upstream between its open and the client's accept. */
const MAX_EARLY_MESSAGES = 1024;
/** RFC 7230 token: what a subprotocol name may be (RFC 6455 4.1). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const WS_KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * The client's handshake, checked before anything is dialled (ws's own checks come later, at accept; an upstream dialled
 * first would be left behind by a refused client). Returns the subprotocols to offer upstream, or why to refuse.
 */
export function checkClientHandshake(req: http.IncomingMessage): { ok: true; protocols: string[] } | { ok: false; why: string } {
  if (req.method !== 'GET') return { ok: false, why: 'upgrade must be a GET' };
  const url = req.url ?? '';
  if (!url.startsWith('/') || url.startsWith('//')) return { ok: false, why: 'request target must be origin-form (a path)' };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { ok: false, why: 'Upgrade must be websocket' };
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WS_KEY.test(key.trim())) return { ok: false, why: 'missing or invalid Sec-WebSocket-Key' };
  if (req.headers['sec-websocket-version'] !== '13') return { ok: false, why: 'Sec-WebSocket-Version must be 13' };
  const header = req.headers['sec-websocket-protocol'];
  const protocols: string[] = [];
  if (header !== undefined) {
    for (const p of header.split(',').map((x) => x.trim())) {
      if (!TOKEN.test(p)) return { ok: false, why: 'invalid Sec-WebSocket-Protocol' };
      if (protocols.includes(p)) return { ok: false, why: 'duplicate subprotocol in Sec-WebSocket-Protocol' };
      protocols.push(p);
    }
  }
  return { ok: true, protocols };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Close codes that may be sent on the wire (1005/1006 are local-only). */
function sendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

class WsEndpoint implements Endpoint {
  private pending = 0;
  private drainCbs: Array<() => void> = [];
  closeCode = 1000;
  closeReason = '';

  constructor(private readonly ws: WebSocket, private raw: net.Socket | null) {}

  write(c: Chunk): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return true;
    const n = c.data.length;
    this.pending += n;
    const done = () => {
      this.pending -= n;
      if (this.pending < LOW_WATER && this.drainCbs.length) {
        const cbs = this.drainCbs;
        this.drainCbs = [];
        for (const cb of cbs) cb();
      }
    };
    // Control frames are relayed, not answered here, so faults on the link apply to them too.
    if (c.control === 'ping') this.ws.ping(c.data, undefined, done);
    else if (c.control === 'pong') this.ws.pong(c.data, undefined, done);
    else this.ws.send(c.data, { binary: c.binary }, done);
    return this.pending < HIGH_WATER;
  }

  onceDrain(cb: () => void): void {
    if (this.pending < LOW_WATER) queueMicrotask(cb);
    else this.drainCbs.push(cb);
  }

  /** Mirror the other side's close: same code, or an abrupt close for an abrupt one. */
  end(): void {
    if (this.ws.readyState !== WebSocket.OPEN && this.ws.readyState !== WebSocket.CONNECTING) return;
    if (this.closeCode === 1006) this.ws.terminate();
    else if (sendableCode(this.closeCode)) this.ws.close(this.closeCode, this.closeReason);
    else this.ws.close();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  destroy(): void {
    this.ws.terminate();
  }

  reset(): void {
    if (this.raw && !this.raw.destroyed) this.raw.resetAndDestroy();
    this.ws.terminate();
  }

  /** The upstream's socket is known only once its handshake is done. */
  setRaw(raw: net.Socket): void {
    this.raw = raw;
  }
}

export class WsLink extends Link {
  private raw: net.Server | null = null;
  private http: http.Server | null = null;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly proxy = httpProxy.createProxyServer({ agent: this.agent, xfwd: true });
  private readonly upstreamProtocol = new WeakMap<http.IncomingMessage, string>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_PAYLOAD,
    // Pings are relayed through the fault chain (a partition must stop them), never answered by the sidecar.
    autoPong: false,
    handleProtocols: (_set, req) => this.upstreamProtocol.get(req) ?? false,
  });

  constructor(name: string, listen: string, upstream: string, enabled: boolean, ctx: LinkContext) {
    super(name, 'ws', listen, upstream, enabled, ctx);
    this.proxy.on('error', (err, _req, res) => {
      this.dialFailed(err);
      if (res instanceof http.ServerResponse && !res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `upstream unreachable: ${err.message}`, status: 502 }));
      } else res.destroy();
    });
  }

  protected listenNow(): Promise<number> {
    const server = http.createServer({ keepAlive: true });
    server.on('request', (req, res) => {
      this.proxy.web(req, res, { target: `http://${formatHostPort(this.upstreamAddr)}` });
    });
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as net.Socket, head));
    server.on('clientError', (err, socket) => {
      this.log.debug({ err: err.message }, 'http client error');
      socket.destroy();
    });
    return new Promise((resolve, reject) => {
      // Raw accept first, so partition-like faults act before any HTTP parsing.
      const raw = net.createServer({ noDelay: true }, (s) => {
        if (!this.interceptAccept(s)) server.emit('connection', s);
      });
      raw.once('error', reject);
      raw.listen({ host: this.listenAddr.host, port: this.listenAddr.port }, () => {
        raw.off('error', reject);
        raw.on('error', (err) => this.log.error({ err: err.message }, 'listener error'));
        this.raw = raw;
        this.http = server;
        resolve((raw.address() as net.AddressInfo).port);
      });
    });
  }

  protected closeListener(): Promise<void> {
    const raw = this.raw;
    const server = this.http;
    this.raw = null;
    this.http = null;
    server?.closeAllConnections();
    this.agent.destroy();
    if (!raw) return Promise.resolve();
    return new Promise((resolve) => raw.close(() => resolve()));
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const id = this.nextConnId();
    const acceptedAt = this.acceptEpoch();
    socket.on('error', (err) => this.log.debug({ conn: id, err: err.message }, 'client socket error'));
    const checked = checkClientHandshake(req);
    if (!checked.ok) {
      this.handshakeRefused(checked.why);
      socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(checked.why)}\r\n\r\n${checked.why}`);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of FORWARDED_HEADERS) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    let upstream: WebSocket;
    try {
      upstream = new WebSocket(`ws://${formatHostPort(this.upstreamAddr)}${req.url ?? '/'}`, checked.protocols, {
        headers,
        perMessageDeflate: false,
        handshakeTimeout: this.ctx.dialTimeoutMs,
        maxPayload: MAX_PAYLOAD,
        autoPong: false,
      });
    } catch (err) {
      // Whatever the check above missed: refuse this client, never the process.
      this.handshakeRefused((err as Error).message);
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    // A client that goes away before the upstream opened must not leave the upstream dial behind.
    socket.once('close', () => {
      if (!opened) upstream.terminate();
    });
    // Messages the upstream sends before the client side is accepted must not be lost.
    const early: Array<[RawData, boolean]> = [];
    let opened = false;
    const keepEarly = (d: RawData, isBinary: boolean) => {
      if (early.length < MAX_EARLY_MESSAGES) early.push([d, isBinary]);
      else upstream.terminate();
    };
    upstream.on('message', keepEarly);
    let upstreamSocket: net.Socket | null = null;
    upstream.once('upgrade', (res) => {
      upstreamSocket = res.socket as net.Socket;
    });
    const refuse = (status: number, why: string) => {
      this.dialFailed(new Error(why));
      if (!socket.destroyed) {
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      }
    };
    upstream.once('unexpected-response', (_r, res) => {
      res.resume();
      refuse(res.statusCode ?? 502, `upstream answered the upgrade with ${res.statusCode}`);
      upstream.terminate();
    });
    upstream.on('error', (err) => {
      if (!opened) refuse(502, err.message);
      else this.log.debug({ conn: id, err: err.message }, 'upstream ws error');
    });
    upstream.once('open', () => {
      opened = true;
      if (socket.destroyed) {
        upstream.terminate();
        return;
      }
      if (upstream.protocol) this.upstreamProtocol.set(req, upstream.protocol);
      this.wss.handleUpgrade(req, socket, head, (client) => {
        const clientEnd = new WsEndpoint(client, socket);
        const upEnd = new WsEndpoint(upstream, upstreamSocket);
        const conn = new Connection(id, this, clientEnd, upEnd);
        const g = (fn: () => void) => this.guard(conn, fn);
        client.on('message', (d, isBinary) => g(() => conn.up.push({ data: toBuffer(d), binary: isBinary })));
        client.on('ping', (d) => g(() => conn.up.push({ data: d, binary: true, control: 'ping' })));
        client.on('pong', (d) => g(() => conn.up.push({ data: d, binary: true, control: 'pong' })));
        upstream.off('message', keepEarly);
        upstream.on('message', (d, isBinary) => g(() => conn.down.push({ data: toBuffer(d), binary: isBinary })));
        upstream.on('ping', (d) => g(() => conn.down.push({ data: d, binary: true, control: 'ping' })));
        upstream.on('pong', (d) => g(() => conn.down.push({ data: d, binary: true, control: 'pong' })));
        client.on('close', (code, reason) => g(() => {
          upEnd.closeCode = code;
          upEnd.closeReason = reason.toString();
          conn.up.end();
          conn.onClose('client');
        }));
        upstream.on('close', (code, reason) => g(() => {
          clientEnd.closeCode = code;
          clientEnd.closeReason = reason.toString();
          conn.down.end();
          conn.onClose('upstream');
        }));
        client.on('error', (err) => g(() => conn.onError('client', err)));
        g(() => this.track(conn, acceptedAt));
        for (const [d, isBinary] of early) g(() => conn.down.push({ data: toBuffer(d), binary: isBinary }));
        early.length = 0;
      });
    });
  }
}

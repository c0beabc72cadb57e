import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { ClientConnection, type ConnectionDeps, type MessageHandler } from './connection.js';
import { CORS_HEADERS } from './nip11.js';
import { listenOn } from './listen.js';
import { normalizeIp } from '../security/subjects.js';
import { ClientLimitMetrics, SharedReqLimits } from './req-limits.js';

export interface RelayServerOptions extends Omit<ConnectionDeps, 'handlers' | 'shared' | 'isNetworkMember'> {
  host: string;
  port: number;
  /** The NIP-11 document, computed on each request so it reflects current settings. */
  information: () => Record<string, unknown>;
  /** May refuse an upgrade (e.g. a banned address); returns a reason or null. */
  admit?: (req: IncomingMessage) => string | null;
}

/** The client-facing listener: NIP-11 over HTTP and NIP-01 over WebSocket on the same port. */
export class RelayServer {
  readonly handlers = new Map<string, MessageHandler>();
  readonly connections = new Set<ClientConnection>();
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly log: Logger;
  private readonly connectionListeners: Array<(c: ClientConnection) => void> = [];
  /** Query slots and per-IP REQ buckets shared by every connection. */
  readonly shared: SharedReqLimits;
  /** Whether a node id belongs to our relay network (set by the relay once peering is wired; default: none). */
  isNetworkMember: (nodeId: string) => boolean = () => false;

  constructor(private readonly options: RelayServerOptions) {
    this.log = options.logger.child({ component: 'relay-server' });
    this.shared = new SharedReqLimits(options.limits, new ClientLimitMetrics(options.metrics.registry));
    // ws closes a connection past maxPayload; accept up to 4x the advertised limit so an oversized
    // message gets a NOTICE instead, while memory stays bounded.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.limits.maxMessageLength * 4, perMessageDeflate: false });
    this.http = createServer((req, res) => this.onHttp(req, res));
    this.http.on('upgrade', (req, socket, head) => {
      const refusal = options.admit?.(req) ?? null;
      if (refusal) {
        socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${refusal}\n`);
        return;
      }
      const full = this.shared.admit(normalizeIp(req.socket.remoteAddress ?? 'unknown'), this.connections.size);
      if (full) {
        this.shared.metrics.refused.inc({ reason: full });
        const { maxConnections, maxConnectionsPerIp } = options.limits;
        const [status, text] = full === 'connections-ip'
          ? ['429 Too Many Requests', `too many connections from your address (the limit is ${maxConnectionsPerIp})`]
          : ['503 Service Unavailable', `the relay holds its most connections (${maxConnections}); try again later`];
        socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\nRetry-After: 10\r\n\r\n${text}\n`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
    });
    this.http.on('clientError', (err, socket) => socket.destroy(err));
  }

  onClientConnected(listener: (c: ClientConnection) => void): void {
    this.connectionListeners.push(listener);
  }

  async listen(): Promise<number> {
    const port = await listenOn(this.http, this.options.host, this.options.port);
    this.log.info({ host: this.options.host, port }, 'relay listening');
    return port;
  }

  /** Stops accepting, then closes every client with 1001 (going away). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const connection of this.connections) connection.close(1001, 'relay shutting down');
    this.http.closeAllConnections();
    await closed;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const address = `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`;
    const connection = new ClientConnection(ws, address, {
      ...this.options,
      handlers: this.handlers,
      shared: this.shared,
      isNetworkMember: (nodeId) => this.isNetworkMember(nodeId),
    });
    this.connections.add(connection);
    this.options.metrics.connections.set(this.connections.size);
    ws.on('close', () => {
      this.connections.delete(connection);
      this.options.metrics.connections.set(this.connections.size);
    });
    for (const listener of this.connectionListeners) listener(connection);
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS_HEADERS).end();
      return;
    }
    if (req.method === 'GET' && (req.headers.accept ?? '').includes('application/nostr+json')) {
      res.writeHead(200, { ...CORS_HEADERS, 'content-type': 'application/nostr+json' });
      res.end(JSON.stringify(this.options.information()));
      return;
    }
    res.writeHead(200, { ...CORS_HEADERS, 'content-type': 'text/plain' });
    res.end('This is a Nostr relay. Connect with a WebSocket client (NIP-01), or ask for application/nostr+json (NIP-11).\n');
  }
}

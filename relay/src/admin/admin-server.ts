import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { listenOn } from '../server/listen.js';
import { AdminRequestGuard } from './request-guard.js';

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface AdminRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body (whatever the content type: `curl -d` sends a form type with a JSON body). */
  body: unknown;
  raw: IncomingMessage;
}

/** A route answers with a JSON-able value (200), `{ status, body }`, or text for Prometheus. */
export type AdminResponse = unknown | { status: number; body?: unknown; text?: string; contentType?: string };
export type AdminHandler = (req: AdminRequest) => Promise<AdminResponse> | AdminResponse;

interface Route {
  method: string;
  path: string;
  handler: AdminHandler;
}

const MAX_BODY = 4 * 1024 * 1024;

export interface AdminServerOptions {
  host: string;
  port: number;
  token: string | undefined;
  /** Extra Host names the API answers to (besides loopback and the bind address). */
  allowedHosts?: string[];
  /** Browser origins allowed to call the API (none by default). */
  allowedOrigins?: string[];
  /** Where the refusal counter is registered (absent: not counted). */
  registry?: Registry;
  logger: Logger;
}

/**
 * The admin HTTP API. Routes are registered by the components that own them (status, peers, bans...).
 * Access rules (token, Origin, Host, content type) are in request-guard.ts and docs/OPERATIONS.md.
 */
export class AdminServer {
  private readonly routes: Route[] = [];
  private readonly http: Server;
  private readonly log: Logger;
  private readonly guard: AdminRequestGuard;
  private readonly refused: Counter<'reason'> | undefined;

  constructor(private readonly options: AdminServerOptions) {
    this.log = options.logger.child({ component: 'admin' });
    this.guard = new AdminRequestGuard({ token: options.token, bindHost: options.host, allowedHosts: options.allowedHosts ?? [], allowedOrigins: options.allowedOrigins ?? [] });
    this.refused = options.registry
      ? new Counter({ name: 'relay_admin_refused_total', help: 'Admin API requests refused, by reason (origin, fetch-site, host, token, content-type)', labelNames: ['reason'], registers: [options.registry] })
      : undefined;
    this.http = createServer((req, res) => void this.dispatch(req, res));
  }

  route(method: string, path: string, handler: AdminHandler): void {
    this.routes.push({ method, path, handler });
  }

  async listen(): Promise<number> {
    const port = await listenOn(this.http, this.options.host, this.options.port);
    this.log.info({ host: this.options.host, port }, 'admin API listening');
    return port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await closed;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    try {
      const refusal = this.guard.check(req, path);
      if (refusal) {
        this.refused?.inc({ reason: refusal.reason });
        this.log.warn({ path, method, reason: refusal.reason, origin: req.headers.origin, host: req.headers.host }, 'admin request refused');
        throw new HttpError(refusal.status, refusal.message);
      }
      const candidates = this.routes.filter((r) => r.path === path);
      if (candidates.length === 0) throw new HttpError(404, `no such endpoint: ${path}`);
      const route = candidates.find((r) => r.method === method || (method === 'HEAD' && r.method === 'GET'));
      if (!route) throw new HttpError(405, `${method} not allowed on ${path} (use ${candidates.map((r) => r.method).join(', ')})`);
      const mutating = method !== 'GET' && method !== 'HEAD';
      const body = mutating ? await this.readBody(req) : undefined;
      const result = await route.handler({ method, path, query: url.searchParams, body, raw: req });
      send(res, result);
    } catch (err) {
      // A refused request may still be sending its body: answer anyway and close.
      if (!req.complete) res.setHeader('connection', 'close');
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) this.log.error({ err, path }, 'admin request failed');
      send(res, { status, body: { error: (err as Error).message, status } });
    }
  }

  /** Reads a mutating call's body: JSON, and from a browser only with a JSON content type (no CORS-simple POST). */
  private readBody(req: IncomingMessage): Promise<unknown> {
    return readJsonBody(req, () => {
      const refusal = this.guard.checkBodyType(req);
      if (!refusal) return;
      this.refused?.inc({ reason: refusal.reason });
      this.log.warn({ path: req.url, reason: refusal.reason, contentType: req.headers['content-type'] }, 'admin request refused');
      throw new HttpError(refusal.status, refusal.message);
    });
  }
}

async function readJsonBody(req: IncomingMessage, beforeParse: () => void): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  beforeParse();
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function isEnvelope(value: unknown): value is { status: number; body?: unknown; text?: string; contentType?: string } {
  return typeof value === 'object' && value !== null && typeof (value as { status?: unknown }).status === 'number' && ('body' in value || 'text' in value);
}

function send(res: ServerResponse, result: AdminResponse): void {
  if (isEnvelope(result)) {
    if (result.text !== undefined) {
      res.writeHead(result.status, { 'content-type': result.contentType ?? 'text/plain; charset=utf-8' }).end(result.text);
      return;
    }
    if (result.body === undefined) {
      res.writeHead(result.status).end();
      return;
    }
    res.writeHead(result.status, { 'content-type': 'application/json' }).end(JSON.stringify(result.body, null, 2) + '\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result, null, 2) + '\n');
}

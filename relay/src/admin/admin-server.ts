import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { listenOn } from '../server/listen.js';

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

/**
 * The admin HTTP API. Routes are registered by the components that own them (status, peers, bans...).
 * Every mutating call (anything but GET/HEAD) needs the admin token when one is configured.
 */
export class AdminServer {
  private readonly routes: Route[] = [];
  private readonly http: Server;
  private readonly log: Logger;

  constructor(private readonly options: { host: string; port: number; token: string | undefined; logger: Logger }) {
    this.log = options.logger.child({ component: 'admin' });
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

  private authorized(req: IncomingMessage): boolean {
    const token = this.options.token;
    if (!token) return true;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : String(req.headers['x-admin-token'] ?? '');
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    try {
      const candidates = this.routes.filter((r) => r.path === path);
      if (candidates.length === 0) throw new HttpError(404, `no such endpoint: ${path}`);
      const route = candidates.find((r) => r.method === method || (method === 'HEAD' && r.method === 'GET'));
      if (!route) throw new HttpError(405, `${method} not allowed on ${path} (use ${candidates.map((r) => r.method).join(', ')})`);
      if (method !== 'GET' && method !== 'HEAD' && !this.authorized(req)) {
        throw new HttpError(401, 'admin token required (Authorization: Bearer <token>)');
      }
      const body = method === 'GET' || method === 'HEAD' ? undefined : await readJsonBody(req);
      const result = await route.handler({ method, path, query: url.searchParams, body, raw: req });
      send(res, result);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) this.log.error({ err, path }, 'admin request failed');
      send(res, { status, body: { error: (err as Error).message, status } });
    }
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
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

/**
 * The SRE console's HTTP server (`make console`): the page's static files, one server-sent-event stream of cluster
 * snapshots, and thin JSON endpoints over the CLI's own code (actions.ts). Access rules: guard.ts.
 *
 *   GET  /health                      no token
 *   GET  /, /app.js, /topology.js, /style.css   the page (no token: code, no data)
 *   GET  /api/meta | /api/snapshot | /api/events (SSE) | /api/experiment | /api/reports | /api/reports/NAME.html
 *   POST /api/heal | /api/profile | /api/partition | /api/fault | /api/fault/remove | /api/experiment | /api/experiment/stop
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { SidecarApiError } from '../chaos/sidecar-client.js';
import type { ClusterLayout } from '../layout.js';
import { Actions } from './actions.js';
import { ExperimentControl } from './experiments.js';
import { ConsoleGuard } from './guard.js';
import { LiveFeed } from './live-feed.js';
import { takeSnapshot } from './snapshot.js';
import { BadRequest } from './validate.js';

/** cluster/dist/console and cluster/src/console both find the page in cluster/src/console/static (no build step). */
export const STATIC_DIR = resolve(import.meta.dirname, '../../src/console/static');

const STATIC: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/topology.js': ['topology.js', 'text/javascript; charset=utf-8'],
  '/stream.js': ['stream.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

// No inline script, nothing from elsewhere, never framed by another page (clickjacking a Heal or a partition).
// Inline styles are allowed for the past reports shown in a sandboxed srcdoc frame, which inherits this policy.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const MAX_BODY = 16 * 1024;

export interface ConsoleOptions {
  layout: ClusterLayout;
  host: string;
  port: number;
  token: string;
  allowedHosts?: string[];
  /** Where past reports are (default <repo>/.reports, where `chaos run` writes them). */
  reportsDir?: string;
  pollIntervalMs?: number;
  maxStreams?: number;
  logger: Logger;
}

export class ConsoleServer {
  private readonly http: Server;
  private readonly feed: LiveFeed;
  private readonly actions: Actions;
  private readonly experiments: ExperimentControl;
  private guard: ConsoleGuard;
  private readonly log: Logger;
  port = 0;

  constructor(private readonly o: ConsoleOptions) {
    this.log = o.logger.child({ component: 'console' });
    this.guard = new ConsoleGuard({ token: o.token, port: o.port, allowedHosts: o.allowedHosts ?? [] });
    this.experiments = new ExperimentControl(o.layout, o.reportsDir ?? join(o.layout.root, '.reports'), this.log, () => this.feed.nudge());
    this.actions = new Actions(o.layout, this.experiments);
    this.feed = new LiveFeed({
      produce: async () => ({ snapshot: await takeSnapshot(o.layout), experiment: this.experiments.status() }),
      intervalMs: o.pollIntervalMs ?? 1000,
      maxClients: o.maxStreams ?? 8,
      logger: this.log,
    });
    this.http = createServer((req, res) => void this.dispatch(req, res));
  }

  async listen(): Promise<number> {
    await new Promise<void>((ok, fail) => {
      this.http.once('error', fail);
      this.http.listen(this.o.port, this.o.host, () => ok());
    });
    const addr = this.http.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.o.port;
    // Port 0 (tests): the own origin is only known now.
    this.guard = new ConsoleGuard({ token: this.o.token, port: this.port, allowedHosts: this.o.allowedHosts ?? [] });
    this.log.info({ host: this.o.host, port: this.port }, 'console listening');
    return this.port;
  }

  async close(): Promise<void> {
    this.feed.close();
    await this.experiments.close();
    const closed = new Promise<void>((ok) => this.http.close(() => ok()));
    this.http.closeAllConnections();
    await closed;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = '/';
    const method = req.method ?? 'GET';
    try {
      path = new URL(req.url ?? '/', 'http://console').pathname;
      if (path.length > 300) throw new BadRequest('path too long', 414);
      const api = path.startsWith('/api/');
      const refusal = this.guard.check(req, path, api);
      if (refusal) {
        this.log.warn({ path, method, reason: refusal.reason, origin: req.headers.origin, host: req.headers.host }, 'console request refused');
        throw new BadRequest(refusal.message, refusal.status);
      }
      if (path === '/health') return send(res, 200, { status: 'ok' });
      if (!api) return this.serveStatic(res, method, path);
      if (method === 'GET' || method === 'HEAD') return await this.get(req, res, path);
      if (method !== 'POST') throw new BadRequest(`${method} not allowed (GET or POST)`, 405);
      const body = await this.readBody(req);
      const result = await this.post(path, body);
      this.feed.nudge();
      send(res, 200, result);
    } catch (err) {
      if (!req.complete) res.setHeader('connection', 'close');
      const [status, message] = errorOf(err);
      // A refusal we chose (BadRequest, 503 "too many live streams") is a warning; anything else is our failure.
      if (err instanceof BadRequest) this.log.warn({ path, method, status, reason: message }, 'console request refused');
      else if (status >= 500) this.log.error({ err, path, method }, 'console request failed');
      if (!res.headersSent) send(res, status, { error: message, status });
      else res.end();
    }
  }

  private serveStatic(res: ServerResponse, method: string, path: string): void {
    const entry = STATIC[path];
    // Browsers ask for it unprompted; an empty answer keeps a 404 out of the page's console.
    if (path === '/favicon.ico') return void res.writeHead(204, SECURITY_HEADERS).end();
    if (!entry) throw new BadRequest(`no such page: ${path.slice(0, 100)}`, 404);
    if (method !== 'GET' && method !== 'HEAD') throw new BadRequest(`${method} not allowed on the page`, 405);
    const text = readFileSync(join(STATIC_DIR, entry[0]));
    res.writeHead(200, { 'content-type': entry[1], ...SECURITY_HEADERS }).end(method === 'HEAD' ? undefined : text);
  }

  private async get(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/api/meta') return send(res, 200, await this.actions.meta());
    if (path === '/api/snapshot') return send(res, 200, await this.feed.latest(2000));
    if (path === '/api/experiment') return send(res, 200, this.experiments.status());
    if (path === '/api/reports') return send(res, 200, { reports: this.experiments.reports() });
    if (path.startsWith('/api/reports/')) {
      let name: string;
      try {
        name = decodeURIComponent(path.slice('/api/reports/'.length));
      } catch {
        throw new BadRequest('report name is not valid URL encoding');
      }
      const html = this.experiments.report(name);
      // Shown in a sandboxed frame: no script of a report ever runs with the console's origin.
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS, 'content-security-policy': "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:" }).end(html);
      return;
    }
    if (path === '/api/events') {
      if (!this.feed.add(res)) throw new BadRequest(`too many live streams (at most ${this.o.maxStreams ?? 8}); close another console tab`, 503);
      req.socket.setTimeout(0);
      return;
    }
    throw new BadRequest(`no such endpoint: GET ${path.slice(0, 100)}`, 404);
  }

  private post(path: string, body: unknown): Promise<unknown> | unknown {
    switch (path) {
      case '/api/heal': return this.actions.heal(body);
      case '/api/profile': return this.actions.applyProfile(body);
      case '/api/partition': return this.actions.partition(body);
      case '/api/fault': return this.actions.addFault(body);
      case '/api/fault/remove': return this.actions.removeFault(body);
      case '/api/experiment': return this.actions.startExperiment(body);
      case '/api/experiment/stop': return this.actions.stopExperiment(body);
      default: throw new BadRequest(`no such endpoint: POST ${path.slice(0, 100)}`, 404);
    }
  }

  /** JSON, at most 16 KiB; from a browser only with a JSON content type (no CORS-simple form POST). */
  private async readBody(req: IncomingMessage): Promise<unknown> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) throw new BadRequest(`body larger than ${MAX_BODY} bytes`, 413);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) throw new BadRequest(`body larger than ${MAX_BODY} bytes`, 413);
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (text === '') return undefined;
    const refusal = this.guard.checkBodyType(req);
    if (refusal) throw new BadRequest(refusal.message, refusal.status);
    try {
      return JSON.parse(text);
    } catch {
      throw new BadRequest('body is not valid JSON');
    }
  }
}

function errorOf(err: unknown): [number, string] {
  if (err instanceof BadRequest) return [err.status, err.message];
  // The sidecar refused the request (a bad fault type or attribute, no such fault): the caller's mistake, said by it.
  if (err instanceof SidecarApiError) return [err.status >= 400 && err.status < 500 ? 400 : 502, err.message];
  return [500, (err as Error).message ?? String(err)];
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', ...SECURITY_HEADERS }).end(JSON.stringify(body) + '\n');
}

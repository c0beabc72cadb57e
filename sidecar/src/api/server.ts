/** The HTTP API server (default 127.0.0.1:8474): access rules, routing, error mapping. */
import http from 'node:http';
import type net from 'node:net';
import type { Sidecar } from '../sidecar.js';
import { VERSION } from '../sidecar.js';
import { FaultError } from '../faults/index.js';
import { ValidationError } from '../yaml-source.js';
import { BadProfileName, ProfileNotFound } from '../profiles/loader.js';
import { checkAccess, type AccessPolicy } from './security.js';
import { isLoopback } from '../links/address.js';
import { HttpError, readBody, sendError, sendJson } from './http-util.js';
import { toxiproxyRoutes } from './toxiproxy-routes.js';
import { chaosRoutes } from './chaos-routes.js';

export interface ApiOptions {
  host: string;
  port: number;
  token?: string;
  allowedHosts?: string[];
}

function statusOf(err: unknown): number {
  if (err instanceof HttpError || err instanceof FaultError) return err.status;
  if (err instanceof ValidationError) return 400;
  if (err instanceof BadProfileName) return 400;
  if (err instanceof ProfileNotFound) return 404;
  return 500;
}

export class ApiServer {
  private server: http.Server | null = null;
  port = 0;

  private readonly policy: AccessPolicy;

  constructor(private readonly sc: Sidecar, private readonly opts: ApiOptions) {
    const allowed = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
    // The address the API is bound to is how clients on that network reach it.
    const bound = opts.host.toLowerCase().replace(/^\[|\]$/g, '');
    if (bound !== '0.0.0.0' && bound !== '::' && !isLoopback(bound)) allowed.add(bound);
    this.policy = { allowedHosts: allowed, ...(opts.token !== undefined ? { token: opts.token } : {}) };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    let parts: string[];
    try {
      url = new URL(req.url ?? '/', 'http://api');
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return sendError(res, 400, 'bad request path');
    }
    await readBody(req);
    const denied = checkAccess(req, url.pathname, this.policy);
    if (denied) return sendError(res, denied[0], denied[1]);
    if (parts[0] === 'version' && parts.length === 1) return sendJson(res, 200, { version: VERSION });
    if (parts[0] === 'metrics' && parts.length === 1) {
      const text = await this.sc.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.sc.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (await toxiproxyRoutes(this.sc, req, res, parts)) return;
    if (await chaosRoutes(this.sc, req, res, parts)) return;
    sendError(res, 404, `no such endpoint: ${req.method} ${url.pathname}`);
  }

  listen(): Promise<number> {
    const log = this.sc.log.child({ component: 'api' });
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const status = statusOf(err);
        if (status >= 500) log.error({ err, method: req.method, url: req.url }, 'API request failed');
        else log.debug({ status, err: (err as Error).message, method: req.method, url: req.url }, 'API request refused');
        if (!res.headersSent) sendError(res, status, (err as Error).message);
        else res.destroy();
      });
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        server.off('error', reject);
        this.server = server;
        this.port = (server.address() as net.AddressInfo).port;
        log.info({ host: this.opts.host, port: this.port, token: this.opts.token ? 'set' : 'none' }, 'API listening');
        resolve(this.port);
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    s.closeAllConnections();
    return new Promise((resolve) => s.close(() => resolve()));
  }
}

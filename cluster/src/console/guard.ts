/**
 * Who may call the console server. The same rules as the relay admin API (relay/src/admin/request-guard.ts) and the
 * sidecar API (sidecar/src/api/security.ts), adapted to a server that does serve one page:
 *
 * - `Host` must be a loopback name or an `--allowed-hosts` entry, on every route but /health (DNS rebinding: a page
 *   at attacker.example resolved to 127.0.0.1 still says `Host: attacker.example`).
 * - An `Origin` header must be the console's own origin (http://<allowed host>:<our port>): every cross-origin POST
 *   and cross-origin fetch carries one, and is refused. Other loopback ports do not count: anything else on this
 *   machine may serve a hostile page.
 * - `Sec-Fetch-Site` other than `same-origin` or `none` is refused (an `<img>`/`<script>` pointing here from a page).
 * - Every /api/ route needs the token (Authorization: Bearer T or X-Console-Token: T), reads included. The page's
 *   own files (/, /app.js, ...) do not: they are code without data, and a browser cannot attach a header to a
 *   navigation. The page gets the token from the URL fragment (never sent to a server) or a form, and sends it.
 * - A body on a POST must be JSON: `application/json` from a browser; any type from curl/Node (no Origin, no
 *   Sec-Fetch-Site), which keeps `curl -d '{...}'` working like the admin API does.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { hostnameOf, isLoopbackName } from '../../../relay/dist/admin/request-guard.js';

export interface ConsolePolicy {
  token: string;
  /** The port the console listens on (the only port its own origin can have). */
  port: number;
  /** Host names accepted besides loopback ones (lower case, no port). */
  allowedHosts: string[];
}

export interface Refusal {
  status: number;
  reason: 'host' | 'origin' | 'fetch-site' | 'token' | 'content-type';
  message: string;
}

export class ConsoleGuard {
  private readonly hosts: Set<string>;

  constructor(private readonly policy: ConsolePolicy) {
    this.hosts = new Set(policy.allowedHosts.map((h) => hostnameOf(h) ?? h.toLowerCase()));
  }

  private hostAllowed(name: string | null): boolean {
    return name !== null && (isLoopbackName(name) || this.hosts.has(name));
  }

  /** True when the request presents the token (constant-time compare). */
  hasToken(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : String(req.headers['x-console-token'] ?? '');
    const a = Buffer.from(given);
    const b = Buffer.from(this.policy.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The Origin is ours: http, an allowed host name, our port. */
  private ownOrigin(origin: string): boolean {
    try {
      const u = new URL(origin);
      const port = u.port === '' ? 80 : Number(u.port);
      return u.protocol === 'http:' && port === this.policy.port && this.hostAllowed(hostnameOf(u.host));
    } catch {
      return false;
    }
  }

  static fromBrowser(req: IncomingMessage): boolean {
    return req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined;
  }

  /** Everything that does not need the body; `api` routes need the token. Returns a refusal or null. */
  check(req: IncomingMessage, path: string, api: boolean): Refusal | null {
    if (path === '/health') return null;
    const host = req.headers.host;
    // No Host at all is an HTTP/1.0 client, never a browser.
    if (host !== undefined && !this.hostAllowed(hostnameOf(host))) {
      return { status: 403, reason: 'host', message: `Host ${host.slice(0, 100)} is not this console (allowed: loopback names, --allowed-hosts)` };
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !this.ownOrigin(origin)) {
      return { status: 403, reason: 'origin', message: `requests from other web pages are refused (Origin ${origin.slice(0, 100)} is not this console)` };
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return { status: 403, reason: 'fetch-site', message: `requests made by other web pages are refused (Sec-Fetch-Site: ${String(site).slice(0, 20)})` };
    }
    if (api && !this.hasToken(req)) {
      return { status: 401, reason: 'token', message: 'console token required (Authorization: Bearer <token>; `make console` prints it)' };
    }
    return null;
  }

  /** For a POST with a body: JSON content type, or any type from a non-browser client (curl -d). */
  checkBodyType(req: IncomingMessage): Refusal | null {
    const type = String(req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (type === 'application/json' || !ConsoleGuard.fromBrowser(req)) return null;
    return { status: 415, reason: 'content-type', message: `body must be application/json (got ${type.slice(0, 60) || 'no content type'})` };
  }
}

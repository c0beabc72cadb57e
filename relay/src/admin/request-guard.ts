import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * Who may call the admin API. The API has no pages, so no browser has a reason to talk to it:
 *
 * - A request carrying an `Origin` header (every browser POST, every cross-origin fetch) is refused unless that
 *   origin is listed in `admin_allowed_origins` (CSRF). So is one a browser marks as not typed by the user
 *   (`Sec-Fetch-Site` other than `none`: an `<img>` or `<script>` pointing at the API from a web page).
 * - The `Host` header must name a loopback name or address, the admin bind address, or a host listed in
 *   `admin_allowed_hosts` (DNS rebinding: a page at attacker.example resolved to 127.0.0.1 still says
 *   `Host: attacker.example`). A request carrying the admin token skips this check (a rebinding page cannot send
 *   the token), and so does `/health` (orchestrators probe it by pod IP; it tells only mode and uptime).
 * - With a token configured, every route but `/health` needs it, reads included.
 * - A body on a mutating call must be JSON: `application/json` always; any other content type only from a
 *   non-browser client (no `Origin`, no `Sec-Fetch-Site`), which keeps `curl -d '{...}'` (a form content type) and
 *   Node's `fetch(url, { method: 'POST', body: '{...}' })` (text/plain) working.
 */
export interface AdminAccessPolicy {
  token: string | undefined;
  /** The admin API's bind address (allowed as a Host unless it is a wildcard). */
  bindHost: string;
  allowedHosts: string[];
  allowedOrigins: string[];
}

export type Refusal = { status: number; reason: 'origin' | 'fetch-site' | 'host' | 'token' | 'content-type'; message: string };

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/** The hostname of a Host header value (`h:port`, `[v6]:port`), lowercased, brackets and a trailing dot removed. */
export function hostnameOf(hostHeader: string): string | null {
  try {
    const host = new URL(`http://${hostHeader}`).hostname.toLowerCase();
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    return bare.endsWith('.') ? bare.slice(0, -1) : bare;
  } catch {
    return null;
  }
}

export function isLoopbackName(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '::1') return true;
  const v4 = hostname.startsWith('::ffff:') ? hostname.slice(7) : hostname;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export class AdminRequestGuard {
  private readonly hosts: Set<string>;
  private readonly origins: Set<string>;

  constructor(private readonly policy: AdminAccessPolicy) {
    const bind = hostnameOf(policy.bindHost.includes(':') && !policy.bindHost.startsWith('[') ? `[${policy.bindHost}]` : policy.bindHost);
    this.hosts = new Set(policy.allowedHosts.map((h) => hostnameOf(h) ?? h.toLowerCase()));
    if (bind && !WILDCARDS.has(bind)) this.hosts.add(bind);
    this.origins = new Set(policy.allowedOrigins.map((o) => o.trim().replace(/\/+$/, '').toLowerCase()));
  }

  /** True when the request presents the configured token (Authorization: Bearer T, or X-Admin-Token: T). */
  hasToken(req: IncomingMessage): boolean {
    const token = this.policy.token;
    if (!token) return false;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : String(req.headers['x-admin-token'] ?? '');
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * Whether the request came from a web page: browsers send Origin on every POST and Sec-Fetch-Site on every
   * request. (Not Sec-Fetch-Mode: Node's fetch sends `sec-fetch-mode: cors` with neither of the others.)
   */
  static fromBrowser(req: IncomingMessage): boolean {
    return req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined;
  }

  /** Checks everything that does not need the body; returns a refusal or null. */
  check(req: IncomingMessage, path: string): Refusal | null {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.origins.has(origin.trim().replace(/\/+$/, '').toLowerCase())) {
      return { status: 403, reason: 'origin', message: `requests from web pages are refused (Origin ${origin.slice(0, 100)} is not in admin_allowed_origins)` };
    }
    const site = req.headers['sec-fetch-site'];
    if (origin === undefined && site !== undefined && site !== 'none') {
      return { status: 403, reason: 'fetch-site', message: `requests made by web pages are refused (Sec-Fetch-Site: ${String(site).slice(0, 20)})` };
    }
    const authenticated = this.hasToken(req);
    if (path !== '/health' && !authenticated) {
      const host = req.headers.host;
      const name = host === undefined ? null : hostnameOf(host);
      // No Host at all is an HTTP/1.0 client, never a browser; a Host must be one of ours.
      if (host !== undefined && (name === null || (!isLoopbackName(name) && !this.hosts.has(name)))) {
        return { status: 403, reason: 'host', message: `Host ${host.slice(0, 100)} is not this admin API (allowed: loopback, the admin bind address, admin_allowed_hosts)` };
      }
      if (this.policy.token) return { status: 401, reason: 'token', message: 'admin token required (Authorization: Bearer <token>)' };
    }
    return null;
  }

  /** For a mutating call with a body: JSON content type, or any type from a non-browser client (curl -d). */
  checkBodyType(req: IncomingMessage): Refusal | null {
    const type = String(req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type)) return null;
    if (!AdminRequestGuard.fromBrowser(req)) return null;
    return { status: 415, reason: 'content-type', message: `body must be application/json (got ${type.slice(0, 60) || 'no content type'})` };
  }
}

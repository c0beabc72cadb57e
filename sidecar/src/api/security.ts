/**
 * API access rules:
 *   - with a token set, every route but /health needs it (Authorization: Bearer T, or X-Api-Token: T);
 *   - a Host header must name a loopback host, the bound address, or one of `api.allowed_hosts` (a DNS-rebinding page
 *     reaches us under its own name, and is refused);
 *   - an Origin header must name such a host too, token or not (a web page elsewhere must not drive the sidecar
 *     through the user's browser);
 *   - binding a non-loopback address requires a token (checked at start).
 * /health answers everyone: probes (kubelet) use the pod address, and it tells nothing.
 */
import type http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { isLoopback } from '../links/address.js';

export interface AccessPolicy {
  token?: string;
  /** Host names accepted besides loopback ones (lower case, no port); `*` matches any run of name characters. */
  allowedHosts: Set<string>;
}

const patterns = new WeakMap<Set<string>, RegExp[]>();

/** Entries with `*` ("relay-*-chaos", "*.svc.cluster.local") as anchored patterns, compiled once per policy. */
function hostPatterns(allowed: Set<string>): RegExp[] {
  let list = patterns.get(allowed);
  if (!list) {
    list = [...allowed]
      .filter((h) => h.includes('*'))
      .map((h) => new RegExp(`^${h.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[a-z0-9.-]*')}$`));
    patterns.set(allowed, list);
  }
  return list;
}

function presentedToken(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const h = req.headers['x-api-token'];
  return typeof h === 'string' ? h : undefined;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** "h", "h:80", "[::1]:80" → "h" / "::1" (lower case); null when it is not a host[:port]. */
export function hostName(value: string): string | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return null;
  return (m[1] ?? m[2]!).toLowerCase();
}

function allowedHost(name: string | null, policy: AccessPolicy): boolean {
  if (name === null) return false;
  return isLoopback(name) || name.endsWith('.localhost') || policy.allowedHosts.has(name) || hostPatterns(policy.allowedHosts).some((re) => re.test(name));
}

/** null = allowed; otherwise [status, message]. */
export function checkAccess(req: http.IncomingMessage, path: string, policy: AccessPolicy): [number, string] | null {
  if (path === '/health') return null;
  const host = req.headers.host;
  if (host !== undefined && !allowedHost(hostName(host), policy)) {
    return [403, `Host ${JSON.stringify(host.slice(0, 100))} is not allowed (loopback names, or api.allowed_hosts)`];
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let name: string | null = null;
    try {
      const u = new URL(origin);
      if (u.protocol === 'http:' || u.protocol === 'https:') name = hostName(u.host);
    } catch {
      name = null;
    }
    if (!allowedHost(name, policy)) {
      return [403, `Origin ${JSON.stringify(origin.slice(0, 100))} is not allowed (browser pages from other sites cannot use this API)`];
    }
  }
  if (policy.token !== undefined) {
    const given = presentedToken(req);
    if (given === undefined || !same(given, policy.token)) {
      return [401, given === undefined ? 'this API needs the token (Authorization: Bearer <token>)' : 'invalid API token'];
    }
  }
  return null;
}

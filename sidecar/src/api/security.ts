/**
 * API access rules: with a token set, every mutating call must carry it
 * (Authorization: Bearer T, or X-Api-Token: T); any request with a browser
 * Origin header is refused unless it carries the token (a web page must not
 * drive the sidecar through the user's browser); binding a non-loopback
 * address requires a token (checked at start).
 */
import type http from 'node:http';
import { timingSafeEqual } from 'node:crypto';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

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

/** null = allowed; otherwise [status, message]. */
export function checkAccess(req: http.IncomingMessage, token: string | undefined): [number, string] | null {
  const given = presentedToken(req);
  const valid = token !== undefined && given !== undefined && same(given, token);
  if (req.headers.origin !== undefined && !valid) {
    return [403, 'requests carrying a browser Origin header need the API token'];
  }
  if (token !== undefined && MUTATING.has(req.method ?? '') && !valid) {
    return [401, given === undefined ? 'this call needs the API token (Authorization: Bearer <token>)' : 'invalid API token'];
  }
  return null;
}

import { type NostrEvent, firstTagValue } from './event.js';

export type KindClass = 'regular' | 'replaceable' | 'ephemeral' | 'addressable';

export function kindClass(kind: number): KindClass {
  if (kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000)) return 'replaceable';
  if (kind >= 20000 && kind < 30000) return 'ephemeral';
  if (kind >= 30000 && kind < 40000) return 'addressable';
  return 'regular';
}

export const DELETION_KIND = 5;

/** The `d` tag value an addressable event is keyed by ("" when absent, as NIP-01 says). */
export function dTag(ev: Pick<NostrEvent, 'tags'>): string {
  return firstTagValue(ev, 'd') ?? '';
}

/** NIP-40 expiration timestamp in seconds, or undefined. */
export function expirationOf(ev: Pick<NostrEvent, 'tags'>): number | undefined {
  const raw = firstTagValue(ev, 'expiration');
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}

export function isExpired(ev: Pick<NostrEvent, 'tags'>, nowSeconds: number): boolean {
  const exp = expirationOf(ev);
  return exp !== undefined && exp <= nowSeconds;
}

/** NIP-70: `["-"]` marks an event only its author may publish; relays never forward it. */
export function isProtected(ev: Pick<NostrEvent, 'tags'>): boolean {
  return ev.tags.some((t) => t.length === 1 && t[0] === '-');
}

/** Replaceable ordering: newer created_at wins; on a tie the lowest id wins. */
export function supersedes(a: Pick<NostrEvent, 'created_at' | 'id'>, b: Pick<NostrEvent, 'created_at' | 'id'>): boolean {
  return a.created_at > b.created_at || (a.created_at === b.created_at && a.id < b.id);
}

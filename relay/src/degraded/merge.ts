import type { NostrEvent } from '../nostr/event.js';
import { compareNewestFirst, matchFilter, type Filter } from '../nostr/filter.js';
import { DELETION_KIND, dTag, isExpired, kindClass, supersedes } from '../nostr/kinds.js';
import type { StoredEvent } from '../storage/types.js';

function addressOf(ev: NostrEvent): string | null {
  const cls = kindClass(ev.kind);
  if (cls === 'replaceable') return `${ev.kind}:${ev.pubkey}:`;
  if (cls === 'addressable') return `${ev.kind}:${ev.pubkey}:${dTag(ev)}`;
  return null;
}

/**
 * Answers filters from events gathered from several places (PostgreSQL, the Redis cache, the journal): one copy per
 * id, only the newest version of a replaceable address, nothing an `e`-tag deletion by the same author removed,
 * nothing expired, then each filter's limit, newest first — what PostgreSQL would answer if it held them all.
 */
export function mergeForFilters(filters: Filter[], sources: StoredEvent[][], nowSeconds = Math.floor(Date.now() / 1000)): StoredEvent[] {
  const byId = new Map<string, StoredEvent>();
  for (const source of sources) for (const item of source) if (!byId.has(item.event.id)) byId.set(item.event.id, item);
  const deleted = new Set<string>();
  const deleters = new Map<string, string>();
  for (const { event } of byId.values()) {
    if (event.kind !== DELETION_KIND) continue;
    for (const t of event.tags) if (t[0] === 'e' && t[1]) deleters.set(t[1], event.pubkey);
  }
  const newest = new Map<string, NostrEvent>();
  for (const { event } of byId.values()) {
    if (deleters.get(event.id) === event.pubkey && event.kind !== DELETION_KIND) deleted.add(event.id);
    const address = addressOf(event);
    if (address === null) continue;
    const best = newest.get(address);
    if (!best || supersedes(event, best)) newest.set(address, event);
  }
  const live = [...byId.values()].filter(({ event }) => {
    if (deleted.has(event.id) || isExpired(event, nowSeconds)) return false;
    const address = addressOf(event);
    return address === null || newest.get(address)!.id === event.id;
  });
  const out = new Map<string, StoredEvent>();
  for (const f of filters) {
    const matches = live.filter((i) => matchFilter(f, i.event)).sort((a, b) => compareNewestFirst(a.event, b.event));
    for (const item of f.limit === undefined ? matches : matches.slice(0, f.limit)) out.set(item.event.id, item);
  }
  return [...out.values()].sort((a, b) => compareNewestFirst(a.event, b.event));
}

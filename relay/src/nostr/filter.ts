import type { NostrEvent } from './event.js';

/** A validated NIP-01 filter. Tag filters are keyed by their single letter ("e" for `#e`). */
export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  tags?: Record<string, string[]>;
}

export interface FilterLimits {
  /** Largest number of values in any one list (ids, authors, kinds, tag values). */
  maxListLength: number;
  /** Largest limit a client may ask for; larger ones are clamped. */
  maxLimit: number;
  /** Limit applied when the client gives none. */
  defaultLimit: number;
}

const HEX64 = /^[0-9a-f]{64}$/;
const TAG_KEY = /^#[a-zA-Z]$/;
const KNOWN = new Set(['ids', 'authors', 'kinds', 'since', 'until', 'limit', 'search']);

export class FilterError extends Error {}

function stringList(name: string, value: unknown, limits: FilterLimits, check?: (s: string) => boolean): string[] {
  if (!Array.isArray(value)) throw new FilterError(`${name} must be an array`);
  if (value.length > limits.maxListLength) throw new FilterError(`${name} has more than ${limits.maxListLength} values`);
  for (const v of value) {
    if (typeof v !== 'string') throw new FilterError(`${name} values must be strings`);
    if (check && !check(v)) throw new FilterError(`${name} values must be 64 lowercase hex characters`);
    if (v.length > 1024) throw new FilterError(`${name} values must be at most 1024 characters`);
  }
  return value as string[];
}

function timestamp(name: string, value: unknown): number {
  // Negative and huge numbers are legal JSON; clamp them to what a BIGINT column can compare.
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value)) {
    throw new FilterError(`${name} must be an integer`);
  }
  return Math.max(Math.min(value, Number.MAX_SAFE_INTEGER), -Number.MAX_SAFE_INTEGER);
}

/** Validates one untrusted filter object; throws FilterError with a reason suitable for `CLOSED "invalid: ..."`. */
export function parseFilter(raw: unknown, limits: FilterLimits): Filter {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FilterError('filter must be a JSON object');
  const filter: Filter = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (TAG_KEY.test(key)) {
      filter.tags ??= {};
      filter.tags[key.slice(1)] = stringList(key, value, limits);
      continue;
    }
    if (!KNOWN.has(key)) continue; // unknown keys are ignored, as other relays do
    switch (key) {
      case 'ids':
        filter.ids = stringList('ids', value, limits, (s) => HEX64.test(s));
        break;
      case 'authors':
        filter.authors = stringList('authors', value, limits, (s) => HEX64.test(s));
        break;
      case 'kinds': {
        if (!Array.isArray(value)) throw new FilterError('kinds must be an array');
        if (value.length > limits.maxListLength) throw new FilterError(`kinds has more than ${limits.maxListLength} values`);
        for (const k of value) {
          if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0) throw new FilterError('kinds values must be non-negative integers');
        }
        filter.kinds = value as number[];
        break;
      }
      case 'since':
        filter.since = timestamp('since', value);
        break;
      case 'until':
        filter.until = timestamp('until', value);
        break;
      case 'limit': {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new FilterError('limit must be a non-negative integer');
        filter.limit = Math.min(value, limits.maxLimit);
        break;
      }
      case 'search':
        break; // NIP-50 is not supported; treat as absent rather than refusing the whole REQ
    }
  }
  filter.limit ??= limits.defaultLimit;
  return filter;
}

/** True when a filter can never match anything (an empty list), so no query is needed. */
export function filterIsEmpty(filter: Filter): boolean {
  if (filter.ids?.length === 0 || filter.authors?.length === 0 || filter.kinds?.length === 0) return true;
  if (filter.tags) for (const values of Object.values(filter.tags)) if (values.length === 0) return true;
  return filter.since !== undefined && filter.until !== undefined && filter.since > filter.until;
}

export function matchFilter(filter: Filter, ev: NostrEvent): boolean {
  if (filter.ids && !filter.ids.includes(ev.id)) return false;
  if (filter.authors && !filter.authors.includes(ev.pubkey)) return false;
  if (filter.kinds && !filter.kinds.includes(ev.kind)) return false;
  if (filter.since !== undefined && ev.created_at < filter.since) return false;
  if (filter.until !== undefined && ev.created_at > filter.until) return false;
  if (filter.tags) {
    for (const [letter, values] of Object.entries(filter.tags)) {
      const hit = ev.tags.some((t) => t[0] === letter && t.length > 1 && values.includes(t[1]!));
      if (!hit) return false;
    }
  }
  return true;
}

export function matchAny(filters: Filter[], ev: NostrEvent): boolean {
  return filters.some((f) => matchFilter(f, ev));
}

/** NIP-01 ordering of an initial query: newest first, ties broken by the lowest id. */
export function compareNewestFirst(a: NostrEvent, b: NostrEvent): number {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

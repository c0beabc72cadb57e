import type { Filter } from '../nostr/filter.js';
import { filterIsEmpty } from '../nostr/filter.js';
import { encodeText } from './text-encoding.js';

export interface SqlQuery {
  text: string;
  values: unknown[];
}

/** BIGINT bounds: since/until beyond them are clamped so a hostile number can never make the statement fail. */
const INT8_MAX = 9223372036854775807n;
const INT8_MIN = -9223372036854775808n;

function clampInt8(n: number): string {
  const b = BigInt(Math.trunc(n));
  return (b > INT8_MAX ? INT8_MAX : b < INT8_MIN ? INT8_MIN : b).toString();
}

/**
 * The WHERE conditions of one filter over `events e`, with every value pushed through `param` as a bind parameter
 * (never spliced in). Expired events are left out. Shared by REQ queries and negentropy record loading so both read
 * the same set for the same filter.
 */
export function filterConditions(filter: Filter, nowSeconds: number, param: (v: unknown) => string): string[] {
  const where: string[] = [];
  if (filter.ids) where.push(`e.id = ANY(${param(filter.ids)}::text[])`);
  if (filter.authors) where.push(`e.pubkey = ANY(${param(filter.authors)}::text[])`);
  if (filter.kinds) where.push(`e.kind = ANY(${param(filter.kinds)}::int4[])`);
  if (filter.since !== undefined) where.push(`e.created_at >= ${param(clampInt8(filter.since))}::int8`);
  if (filter.until !== undefined) where.push(`e.created_at <= ${param(clampInt8(filter.until))}::int8`);
  where.push(`(e.expires_at IS NULL OR e.expires_at > ${param(clampInt8(nowSeconds))}::int8)`);
  // AND across tag letters, OR within one letter's values.
  for (const [letter, tagValues] of Object.entries(filter.tags ?? {})) {
    where.push(
      `EXISTS (SELECT 1 FROM event_tags t WHERE t.event_id = e.id AND t.name = ${param(letter)}` +
        ` AND t.value = ANY(${param(tagValues.map(encodeText))}::text[]))`,
    );
  }
  return where;
}

/** A parameter list and the `$n` placeholder of each value pushed into it. */
export function parameters(): { values: unknown[]; param: (v: unknown) => string } {
  const values: unknown[] = [];
  return {
    values,
    param: (v) => {
      values.push(v);
      return `$${values.length}`;
    },
  };
}

/**
 * One parameterised SELECT for one filter, newest first with ties broken by the lowest id; null when the filter
 * cannot match (limit 0 or an empty list) so no query runs.
 */
export function buildFilterQuery(filter: Filter, nowSeconds: number, maxLimit: number): SqlQuery | null {
  if (filter.limit === 0 || filterIsEmpty(filter)) return null;
  const { values, param } = parameters();
  const where = filterConditions(filter, nowSeconds, param);
  const limit = Math.min(filter.limit ?? maxLimit, maxLimit);
  const text =
    `SELECT e.id, e.raw FROM events e WHERE ${where.join(' AND ')}` +
    ` ORDER BY e.created_at DESC, e.id ASC LIMIT ${param(limit)}::int8`;
  return { text, values };
}

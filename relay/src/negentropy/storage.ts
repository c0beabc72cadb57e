import type pg from 'pg';
import type { Filter } from '../nostr/filter.js';
import { filterConditions, parameters } from '../storage/sql-filter.js';
import { compareBytes, ID_SIZE, type Bound } from './encoding.js';
import { fingerprint } from './fingerprint.js';

export interface NegentropyRecord {
  created_at: number;
  id: string;
}

/**
 * The sealed, sorted (created_at, id) set one negentropy session reconciles. Ids are packed into one buffer and
 * timestamps into one typed array: a million records take ~40 MB instead of a million small objects.
 */
export class NegentropyVector {
  private constructor(readonly timestamps: Float64Array, readonly ids: Uint8Array) {}

  static fromRecords(records: NegentropyRecord[]): NegentropyVector {
    const order = (a: NegentropyRecord, b: NegentropyRecord) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    // Rows from PostgreSQL arrive sorted already (ORDER BY created_at, id with the "C" collation): skip the sort.
    const isSorted = records.every((r, i) => i === 0 || order(records[i - 1]!, r) <= 0);
    const sorted = isSorted ? records : [...records].sort(order);
    const unique = sorted.filter((r, i) => i === 0 || r.id !== sorted[i - 1]!.id || r.created_at !== sorted[i - 1]!.created_at);
    const timestamps = new Float64Array(unique.length);
    const ids = new Uint8Array(unique.length * ID_SIZE);
    unique.forEach((r, i) => {
      timestamps[i] = r.created_at;
      ids.set(Buffer.from(r.id, 'hex'), i * ID_SIZE);
    });
    return new NegentropyVector(timestamps, ids);
  }

  get size(): number {
    return this.timestamps.length;
  }

  timestamp(i: number): number {
    return this.timestamps[i]!;
  }

  id(i: number): Uint8Array {
    return this.ids.subarray(i * ID_SIZE, (i + 1) * ID_SIZE);
  }

  idHex(i: number): string {
    return Buffer.from(this.ids.buffer, this.ids.byteOffset + i * ID_SIZE, ID_SIZE).toString('hex');
  }

  fingerprint(begin: number, end: number): Uint8Array {
    return fingerprint(this.ids, begin, end);
  }

  /** First index in [begin, end) whose record is not below the bound (binary search). */
  lowerBound(begin: number, end: number, b: Bound): number {
    let lo = begin;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.below(mid, b)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private below(i: number, b: Bound): boolean {
    const ts = this.timestamps[i]!;
    if (ts !== b.timestamp) return ts < b.timestamp;
    return compareBytes(this.id(i), b.id) < 0;
  }
}

export class TooManyRecordsError extends Error {}

/** Records read for reconciliation, with the earliest expires_at among them (unix seconds; Infinity for none). */
export interface LoadedRecords {
  records: NegentropyRecord[];
  expiresAt: number;
}

/**
 * Reads the (created_at, id) records matching a filter straight from the events table, oldest first. Expired
 * events are left out (they are not served), and so are NIP-70 protected events: relays never forward them, so
 * offering them to a peer would only make every reconciliation find the same differences again. Deleted and
 * replaced events are gone from `events` (their ids live on as tombstones), so they are never offered.
 * `limit` in the filter is ignored: reconciliation is over the whole matching set, capped at `maxRecords`.
 */
export async function loadRecords(pool: pg.Pool, filter: Filter, maxRecords: number, nowSeconds = Math.floor(Date.now() / 1000)): Promise<LoadedRecords> {
  const rows = await selectRecords(pool, filter, maxRecords + 1, 'e.created_at, e.id', nowSeconds);
  if (rows.length > maxRecords) throw new TooManyRecordsError(`more than ${maxRecords} records match`);
  return toLoaded(rows);
}

/**
 * The next time window of at most `maxRecords` records from `since` on (up to `until`, inclusive, if finite):
 * the window ends just before the second of the first record past the bound, so a window never splits a second.
 * `until` is null when the whole rest fits. A second holding more than `maxRecords` records is one window of its
 * own, up to `hardCap` records, past which TooManyRecordsError.
 */
export async function loadWindow(
  pool: pg.Pool,
  since: number,
  until: number,
  maxRecords: number,
  hardCap: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<LoadedRecords & { until: number }> {
  const filter: Filter = Number.isFinite(until) ? { since, until } : { since };
  // Ordered by created_at only: the index serves it, and the cut drops the boundary second whole.
  const rows = await selectRecords(pool, filter, maxRecords + 1, 'e.created_at', nowSeconds);
  if (rows.length <= maxRecords) return { ...toLoaded(rows), until };
  const cut = Number(rows[maxRecords]!.created_at);
  if (cut > since) return { ...toLoaded(rows.filter((r) => Number(r.created_at) < cut)), until: cut - 1 };
  const whole = await selectRecords(pool, { since, until: since }, hardCap + 1, 'e.created_at', nowSeconds);
  if (whole.length > hardCap) throw new TooManyRecordsError(`more than ${hardCap} records share the second ${since}`);
  return { ...toLoaded(whole), until: since };
}

interface Row {
  created_at: string;
  id: string;
  expires_at: string | null;
}

async function selectRecords(pool: pg.Pool, filter: Filter, limit: number, order: string, nowSeconds: number): Promise<Row[]> {
  const { values, param } = parameters();
  const where = filterConditions(filter, nowSeconds, param);
  where.push(`NOT (e.tags @> '[["-"]]'::jsonb)`);
  const res = await pool.query<Row>(
    `SELECT e.created_at, e.id, e.expires_at FROM events e WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${param(limit)}::int8`,
    values,
  );
  return res.rows;
}

function toLoaded(rows: Row[]): LoadedRecords {
  let expiresAt = Infinity;
  const records = rows.map((r) => {
    if (r.expires_at !== null) expiresAt = Math.min(expiresAt, Number(r.expires_at));
    return { created_at: Number(r.created_at), id: r.id };
  });
  return { records, expiresAt };
}

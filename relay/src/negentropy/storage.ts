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

/**
 * Reads the (created_at, id) records matching a filter straight from the events table, oldest first. Expired
 * events are left out (they are not served), and so are NIP-70 protected events: relays never forward them, so
 * offering them to a peer would only make every reconciliation find the same differences again. Deleted and
 * replaced events are gone from `events` (their ids live on as tombstones), so they are never offered.
 * `limit` in the filter is ignored: reconciliation is over the whole matching set, capped at `maxRecords`.
 */
export async function loadRecords(pool: pg.Pool, filter: Filter, maxRecords: number, nowSeconds = Math.floor(Date.now() / 1000)): Promise<NegentropyRecord[]> {
  const { values, param } = parameters();
  const where = filterConditions(filter, nowSeconds, param);
  where.push(`NOT (e.tags @> '[["-"]]'::jsonb)`);
  const res = await pool.query<{ created_at: string; id: string }>(
    `SELECT e.created_at, e.id FROM events e WHERE ${where.join(' AND ')} ORDER BY e.created_at, e.id LIMIT ${param(maxRecords + 1)}::int8`,
    values,
  );
  if (res.rows.length > maxRecords) throw new TooManyRecordsError(`more than ${maxRecords} records match`);
  return res.rows.map((r) => ({ created_at: Number(r.created_at), id: r.id }));
}

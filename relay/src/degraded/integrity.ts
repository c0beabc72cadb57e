import type pg from 'pg';
import type { SignatureVerifier } from '../crypto/types.js';
import { computeEventId, type NostrEvent } from '../nostr/event.js';

export interface IntegrityReport {
  ok: boolean;
  /** Stored events whose id and signature were recomputed. */
  checked: number;
  /** Of those, events whose id, signature or columns do not match their JSON. */
  invalid: number;
  /** Stored events that also carry a tombstone, plus addresses holding more than one version. */
  duplicates: number;
  /** Events accepted but not yet in PostgreSQL (journal + Redis write buffer). */
  pending: number;
  /** Rows in events, and event_tags rows whose event is gone (the counts must agree: 0). */
  events: number;
  orphanTags: number;
  /** Events accepted while degraded that a kind rule refused at replay (recorded, not lost). */
  refusedAtReplay: number;
  sample?: number;
  invalidIds: string[];
  /** Why `ok` is false, in words (empty when ok). */
  problems: string[];
}

export interface IntegrityDeps {
  pool: pg.Pool;
  verifier: SignatureVerifier;
  /** Journal events not yet replayed. */
  journalPending: () => number;
  /** Length of the Redis write buffer, or null when Redis cannot be asked. */
  bufferPending: () => Promise<number | null>;
  refusedAtReplay: () => number;
}

const PAGE = 2000;

interface Row {
  id: string;
  pubkey: string;
  created_at: string;
  kind: number;
  sig: string;
  raw: string;
}

/**
 * Recomputes the id and checks the signature of stored events (all, or a random sample), inside one REPEATABLE
 * READ snapshot so the counts it compares are consistent with each other.
 */
export async function verifyIntegrity(deps: IntegrityDeps, sample?: number): Promise<IntegrityReport> {
  const invalidIds: string[] = [];
  let checked = 0;
  let invalid = 0;
  const client = await deps.pool.connect();
  let broken: Error | undefined;
  let events: number;
  let orphanTags: number;
  let duplicates: number;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const check = async (rows: Row[]): Promise<void> => {
      const parsed: Array<{ row: Row; ev: NostrEvent | null }> = rows.map((row) => {
        try {
          return { row, ev: JSON.parse(row.raw) as NostrEvent };
        } catch {
          return { row, ev: null };
        }
      });
      const sigs = await deps.verifier.verifyMany(parsed.map(({ ev, row }) => ({ id: row.id, pubkey: ev?.pubkey ?? row.pubkey, sig: ev?.sig ?? row.sig })));
      parsed.forEach(({ row, ev }, i) => {
        checked++;
        const good =
          ev !== null &&
          ev.id === row.id &&
          computeEventId(ev) === row.id &&
          ev.pubkey === row.pubkey &&
          ev.kind === row.kind &&
          ev.created_at === Number(row.created_at) &&
          ev.sig === row.sig &&
          sigs[i] === true;
        if (!good) {
          invalid++;
          if (invalidIds.length < 20) invalidIds.push(row.id);
        }
      });
    };
    const cols = 'id, pubkey, created_at, kind, sig, raw';
    if (sample !== undefined) {
      const res = await client.query<Row>(`SELECT ${cols} FROM events ORDER BY random() LIMIT $1`, [sample]);
      await check(res.rows);
    } else {
      let after = '';
      for (;;) {
        const res = await client.query<Row>(`SELECT ${cols} FROM events WHERE id > $1 ORDER BY id LIMIT ${PAGE}`, [after]);
        if (res.rows.length === 0) break;
        await check(res.rows);
        after = res.rows.at(-1)!.id;
      }
    }
    const counts = await client.query<{ events: string; orphans: string; tombstoned: string; addresses: string }>(
      `SELECT (SELECT count(*) FROM events) AS events,
              (SELECT count(*) FROM event_tags et WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = et.event_id)) AS orphans,
              (SELECT count(*) FROM events e JOIN tombstones t ON t.id = e.id) AS tombstoned,
              (SELECT count(*) FROM (SELECT 1 FROM events WHERE d_tag IS NOT NULL GROUP BY pubkey, kind, d_tag HAVING count(*) > 1) x) AS addresses`,
    );
    const c = counts.rows[0]!;
    events = Number(c.events);
    orphanTags = Number(c.orphans);
    duplicates = Number(c.tombstoned) + Number(c.addresses);
    await client.query('COMMIT');
  } catch (err) {
    broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
  const buffered = await deps.bufferPending();
  const pending = deps.journalPending() + (buffered ?? 0);
  const problems: string[] = [];
  if (invalid > 0) problems.push(`${invalid} stored events fail id, signature or column checks`);
  if (duplicates > 0) problems.push(`${duplicates} events are both stored and tombstoned, or share an address`);
  if (pending > 0) problems.push(`${pending} accepted events are not in PostgreSQL yet (journal or write buffer)`);
  if (orphanTags > 0) problems.push(`${orphanTags} tag rows point to no event`);
  if (sample === undefined && checked !== events) problems.push(`checked ${checked} events but the table holds ${events}`);
  if (buffered === null) problems.push('the Redis write buffer could not be checked (Redis unavailable)');
  return {
    ok: problems.length === 0, checked, invalid, duplicates, pending, events, orphanTags, refusedAtReplay: deps.refusedAtReplay(),
    ...(sample !== undefined ? { sample } : {}), invalidIds, problems,
  };
}

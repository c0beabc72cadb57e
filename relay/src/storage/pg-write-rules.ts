import type pg from 'pg';
import { eventShapeError, type NostrEvent } from '../nostr/event.js';
import { DELETION_KIND, dTag, expirationOf, kindClass, supersedes } from '../nostr/kinds.js';
import { encodeText, needsEscape } from './text-encoding.js';
import type { SaveOutcome, StoredEvent } from './types.js';

// The kind rules as SQL, inside the caller's write transaction: known ids, replaceable/addressable versions, NIP-09
// deletions, and the set-based insert of events and their tag index rows.

export const REASON_NEWER = 'invalid: a newer version of this replaceable event is already stored';
export const REASON_DELETED = 'blocked: this event was deleted';

/**
 * Advisory lock (two-int4 key space, which never overlaps the int8 one used for addresses) that write batches take
 * shared, and batches carrying deletions take exclusive: a deletion must not race an insert of its target
 * committed by another relay on the same database.
 */
export const WRITE_LOCK: readonly [number, number] = [0x6e6f7374, 2];

/** Tag values longer than this are not indexed: btree rows are capped near 2.7 kB and filters allow 1024 chars. */
const MAX_INDEXED_TAG_BYTES = 2048;
const MAX_D_TAG_BYTES = 1024;

/** One event ready for SQL: every column already computed. */
export interface Row {
  ev: NostrEvent;
  raw: string;
  dTag: string | null;
  address: string | null;
  expiresAt: number | null;
  tags: [string, string][];
}

/**
 * Ids of a batch that are already known ($1 ids, $2 their pubkeys, $3 their kinds): stored, tombstoned
 * ('deleted'/'replaced'), or named by an earlier deletion from the same author ('pending'; kind 5 is exempt,
 * NIP-09 ignores deletions of deletions). Used as the head of a WITH clause.
 */
const KNOWN_SQL = `WITH known AS (
  SELECT e.id, 'stored' AS state FROM events e WHERE e.id = ANY($1::text[])
  UNION ALL SELECT b.id, b.reason FROM tombstones b WHERE b.id = ANY($1::text[])
  UNION ALL SELECT p.id, 'pending' FROM pending_deletions p
    JOIN unnest($1::text[], $2::text[], $3::int4[]) AS q(id, pubkey, kind) ON p.id = q.id AND p.pubkey = q.pubkey
   WHERE q.kind <> ${DELETION_KIND})`;

function parseAddress(value: string): { kind: number; pubkey: string; d: string } | null {
  const first = value.indexOf(':');
  const second = first < 0 ? -1 : value.indexOf(':', first + 1);
  if (second < 0) return null;
  const kindText = value.slice(0, first);
  if (!/^\d{1,10}$/.test(kindText)) return null;
  return { kind: Number(kindText), pubkey: value.slice(first + 1, second), d: value.slice(second + 1) };
}

/**
 * The client's shape check, except that an integral created_at beyond the safe range is left to PostgreSQL (it
 * refuses values past int8 as a data error, which the batch bisects): only what would break building the SQL is
 * refused here.
 */
function structureError(ev: unknown): string | null {
  const o = ev as Record<string, unknown> | null;
  if (typeof o === 'object' && o !== null && Number.isInteger(o.created_at)) return eventShapeError({ ...o, created_at: 0 });
  return eventShapeError(ev);
}

/**
 * Refusals that need no database. The shape is checked again here, whoever the caller is (the pipeline, a replay of
 * the journal or of the Redis write buffer): a malformed event must be refused, never reach SQL or crash a batch. (Ids
 * and signatures are the callers' checks: the pipeline's, the journal's on open, the write buffer's on replay.)
 */
export function precheck(ev: NostrEvent, now: number): SaveOutcome | null {
  const shape = structureError(ev);
  if (shape) return { status: 'rejected', reason: `invalid: ${shape}` };
  const cls = kindClass(ev.kind);
  // The pipeline never hands ephemeral events to the store; refuse rather than persist one by mistake.
  if (cls === 'ephemeral') return { status: 'rejected', reason: 'invalid: ephemeral events are not stored' };
  if (ev.kind > 2147483647) return { status: 'rejected', reason: 'invalid: kind is out of range' };
  const exp = expirationOf(ev);
  if (exp !== undefined && exp <= now) return { status: 'rejected', reason: 'invalid: event has expired' };
  if (cls === 'addressable' && Buffer.byteLength(encodeText(dTag(ev))) > MAX_D_TAG_BYTES) {
    return { status: 'rejected', reason: 'invalid: d tag is too long' };
  }
  return null;
}

export function toRow(item: StoredEvent): Row {
  const ev = item.event;
  const cls = kindClass(ev.kind);
  const d = cls === 'addressable' ? dTag(ev) : cls === 'replaceable' ? '' : null;
  const tags: [string, string][] = [];
  const seen = new Set<string>();
  for (const t of ev.tags) {
    const name = t[0];
    const value = t[1];
    if (name === undefined || value === undefined || name.length !== 1) continue;
    const enc = encodeText(value);
    if (Buffer.byteLength(enc) > MAX_INDEXED_TAG_BYTES) continue;
    const key = `${name}\u0000${enc}`;
    if (seen.has(key)) continue;
    seen.add(key);
    tags.push([name, enc]);
  }
  // Valid JSON never holds a raw NUL or a lone surrogate; if the caller's text somehow does, serve a clean copy.
  const raw = needsEscape(item.raw) ? JSON.stringify(ev) : item.raw;
  return {
    ev,
    raw,
    dTag: d === null ? null : encodeText(d),
    address: d === null ? null : `${ev.kind}:${ev.pubkey}:${encodeText(d)}`,
    expiresAt: expirationOf(ev) ?? null,
    tags,
  };
}

export async function applyRows(client: pg.PoolClient, rows: Row[], hasDeletion: boolean): Promise<Map<string, SaveOutcome>> {
  const out = new Map<string, SaveOutcome>();
  const addresses = [...new Set(rows.flatMap((r) => (r.address === null ? [] : [r.address])))];
  if (!hasDeletion && addresses.length === 0) {
    // Fast path for plain regular events: the known-id check and both inserts run as one statement.
    const { inserted, known } = await insertRows(client, rows, true);
    const newlyDeleted: string[] = [];
    for (const row of rows) {
      const id = row.ev.id;
      const verdict = knownVerdict(known.get(id));
      if (verdict) {
        out.set(id, verdict);
        if (known.get(id) === 'pending') newlyDeleted.push(id);
      } else out.set(id, inserted.has(id) ? { status: 'stored' } : { status: 'duplicate' });
    }
    await tombstoneDeleted(client, newlyDeleted);
    return out;
  }
  if (addresses.length > 0) {
    // Sorted by key so two batches locking overlapping addresses can never deadlock.
    await client.query(
      `SELECT count(pg_advisory_xact_lock(h)) FROM
         (SELECT DISTINCT hashtextextended(a, 0) AS h FROM unnest($1::text[]) AS a ORDER BY 1) AS s`,
      [addresses],
    );
  }
  const known = await client.query<{ id: string; state: string }>(
    `${KNOWN_SQL} SELECT id, state FROM known`,
    [rows.map((r) => r.ev.id), rows.map((r) => r.ev.pubkey), rows.map((r) => r.ev.kind)],
  );
  const state = new Map<string, string>();
  for (const r of known.rows) if (state.get(r.id) !== 'deleted') state.set(r.id, r.state);
  const newlyDeleted: string[] = [];
  let candidates: Row[] = [];
  for (const row of rows) {
    const verdict = knownVerdict(state.get(row.ev.id));
    if (verdict) {
      out.set(row.ev.id, verdict);
      if (state.get(row.ev.id) === 'pending') newlyDeleted.push(row.ev.id);
    } else candidates.push(row);
  }

  const replaced = await resolveAddresses(client, candidates, out);
  candidates = candidates.filter((r) => !out.has(r.ev.id));

  if (replaced.length > 0) {
    await client.query(
      `WITH del AS (DELETE FROM events WHERE id = ANY($1::text[]) RETURNING id),
            dt AS (DELETE FROM event_tags WHERE event_id = ANY($1::text[]))
       INSERT INTO tombstones (id, reason) SELECT id, 'replaced' FROM del ON CONFLICT (id) DO NOTHING`,
      [replaced],
    );
  }
  await tombstoneDeleted(client, newlyDeleted);

  const { inserted } = await insertRows(client, candidates, false);
  for (const row of candidates) out.set(row.ev.id, inserted.has(row.ev.id) ? { status: 'stored' } : { status: 'duplicate' });

  const deletions = candidates.filter((r) => r.ev.kind === DELETION_KIND && inserted.has(r.ev.id));
  if (deletions.length > 0) await applyDeletions(client, deletions);
  return out;
}

/** Outcome for an id the database already knows: stored, tombstoned, or deleted in advance by its author. */
function knownVerdict(state: string | undefined): SaveOutcome | null {
  if (state === 'deleted' || state === 'pending') return { status: 'rejected', reason: REASON_DELETED };
  if (state === 'replaced') return { status: 'rejected', reason: REASON_NEWER };
  if (state === 'stored') return { status: 'duplicate' };
  return null;
}

/** Events refused because their author's deletion came first get a tombstone, so lookup() reports them. */
async function tombstoneDeleted(client: pg.PoolClient, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await client.query(
    `INSERT INTO tombstones (id, reason) SELECT unnest($1::text[]), 'deleted' ON CONFLICT (id) DO NOTHING`,
    [ids],
  );
}

/**
 * Replaceable/addressable rules for the candidates of this batch against what is stored (read under the
 * address locks): refuses losers and address-deleted versions into `out`, returns stored ids to replace.
 */
async function resolveAddresses(client: pg.PoolClient, candidates: Row[], out: Map<string, SaveOutcome>): Promise<string[]> {
  const groups = new Map<string, Row[]>();
  for (const r of candidates) {
    if (r.address === null) continue;
    const g = groups.get(r.address) ?? [];
    g.push(r);
    groups.set(r.address, g);
  }
  if (groups.size === 0) return [];
  const keys = [...groups.values()].map((g) => g[0]!);
  const params = [keys.map((r) => r.ev.pubkey), keys.map((r) => r.ev.kind), keys.map((r) => r.dTag!)];
  const [current, deleted] = await Promise.all([
    client.query<{ id: string; pubkey: string; kind: number; d_tag: string; created_at: string }>(
      `SELECT e.id, e.pubkey, e.kind, e.d_tag, e.created_at FROM events e
         JOIN unnest($1::text[], $2::int4[], $3::text[]) AS a(pubkey, kind, d)
           ON e.pubkey = a.pubkey AND e.kind = a.kind AND e.d_tag = a.d`,
      params,
    ),
    client.query<{ pubkey: string; kind: number; d: string; deleted_until: string }>(
      `SELECT x.pubkey, x.kind, x.d, x.deleted_until FROM address_deletions x
         JOIN unnest($1::text[], $2::int4[], $3::text[]) AS a(pubkey, kind, d)
           ON x.pubkey = a.pubkey AND x.kind = a.kind AND x.d = a.d`,
      params,
    ),
  ]);
  const currentBy = new Map(current.rows.map((r) => [`${r.kind}:${r.pubkey}:${r.d_tag}`, { id: r.id, created_at: Number(r.created_at) }]));
  const deletedBy = new Map(deleted.rows.map((r) => [`${r.kind}:${r.pubkey}:${r.d}`, Number(r.deleted_until)]));
  const replaced: string[] = [];
  for (const [address, group] of groups) {
    const until = deletedBy.get(address);
    const alive: Row[] = [];
    for (const r of group) {
      if (until !== undefined && r.ev.created_at <= until) out.set(r.ev.id, { status: 'rejected', reason: REASON_DELETED });
      else alive.push(r);
    }
    if (alive.length === 0) continue;
    let best = alive[0]!;
    for (const r of alive) if (supersedes(r.ev, best.ev)) best = r;
    for (const r of alive) if (r !== best) out.set(r.ev.id, { status: 'rejected', reason: REASON_NEWER });
    const stored = currentBy.get(address);
    if (stored && stored.id !== best.ev.id) {
      if (supersedes(best.ev, stored)) replaced.push(stored.id);
      else out.set(best.ev.id, { status: 'rejected', reason: REASON_NEWER });
    }
  }
  return replaced;
}

/**
 * Inserts rows and their tag index entries in one statement. With `checkKnown`, ids already stored, tombstoned
 * or deleted in advance by their author (state 'pending') are left out and reported in `known`.
 */
async function insertRows(
  client: pg.PoolClient,
  rows: Row[],
  checkKnown: boolean,
): Promise<{ inserted: Set<string>; known: Map<string, string> }> {
  if (rows.length === 0) return { inserted: new Set(), known: new Map() };
  const tagIds: string[] = [];
  const tagNames: string[] = [];
  const tagValues: string[] = [];
  const tagCreated: number[] = [];
  for (const r of rows) {
    for (const [name, value] of r.tags) {
      tagIds.push(r.ev.id);
      tagNames.push(name);
      tagValues.push(value);
      tagCreated.push(r.ev.created_at);
    }
  }
  const res = await client.query<{ id: string; state: string }>(
    `${KNOWN_SQL},
     ins AS (
       INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, raw, d_tag, expires_at)
       SELECT x.id, x.pubkey, x.created_at, x.kind, x.tags::jsonb, x.content, x.sig, x.raw, x.d_tag, x.expires_at
         FROM unnest($1::text[], $2::text[], $4::int8[], $3::int4[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::int8[])
           AS x(id, pubkey, created_at, kind, tags, content, sig, raw, d_tag, expires_at)
        WHERE ${checkKnown ? 'NOT EXISTS (SELECT 1 FROM known k WHERE k.id = x.id)' : 'true'}
       ON CONFLICT (id) DO NOTHING
       RETURNING id),
     tg AS (
       INSERT INTO event_tags (event_id, name, value, created_at)
       SELECT t.event_id, t.name, t.value, t.created_at
         FROM unnest($11::text[], $12::text[], $13::text[], $14::int8[]) AS t(event_id, name, value, created_at)
        WHERE t.event_id IN (SELECT id FROM ins))
     SELECT id, 'inserted' AS state FROM ins
     ${checkKnown ? 'UNION ALL SELECT id, state FROM known' : ''}`,
    [
      rows.map((r) => r.ev.id),
      rows.map((r) => r.ev.pubkey),
      rows.map((r) => r.ev.kind),
      rows.map((r) => r.ev.created_at),
      rows.map((r) => JSON.stringify(r.ev.tags.map((t) => t.map(encodeText)))),
      rows.map((r) => encodeText(r.ev.content)),
      rows.map((r) => r.ev.sig),
      rows.map((r) => r.raw),
      rows.map((r) => r.dTag),
      rows.map((r) => r.expiresAt),
      tagIds,
      tagNames,
      tagValues,
      tagCreated,
    ],
  );
  const inserted = new Set<string>();
  const known = new Map<string, string>();
  for (const r of res.rows) {
    if (r.state === 'inserted') inserted.add(r.id);
    else if (known.get(r.id) !== 'deleted') known.set(r.id, r.state);
  }
  return { inserted, known };
}

/** NIP-09 for the deletion events just inserted: same author only, `e` by id, `a` by address up to created_at. */
async function applyDeletions(client: pg.PoolClient, deletions: Row[]): Promise<void> {
  const eIds: string[] = [];
  const ePubkeys: string[] = [];
  const aKinds: number[] = [];
  const aPubkeys: string[] = [];
  const aDs: string[] = [];
  const aUntil: number[] = [];
  for (const { ev } of deletions) {
    for (const t of ev.tags) {
      const value = t[1];
      if (value === undefined) continue;
      if (t[0] === 'e' && /^[0-9a-f]{64}$/.test(value) && value !== ev.id) {
        eIds.push(value);
        ePubkeys.push(ev.pubkey);
      } else if (t[0] === 'a') {
        const addr = parseAddress(value);
        if (!addr || addr.pubkey !== ev.pubkey) continue; // only the author may delete an address
        const cls = kindClass(addr.kind);
        if (cls !== 'addressable' && cls !== 'replaceable') continue;
        aKinds.push(addr.kind);
        aPubkeys.push(addr.pubkey);
        aDs.push(encodeText(cls === 'replaceable' ? '' : addr.d));
        aUntil.push(ev.created_at);
      }
    }
  }
  if (eIds.length > 0) {
    await client.query(
      `WITH t AS (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS t(id, pubkey)),
            del AS (DELETE FROM events e USING t WHERE e.id = t.id AND e.pubkey = t.pubkey AND e.kind <> ${DELETION_KIND}
                    RETURNING e.id),
            dt AS (DELETE FROM event_tags et USING del WHERE et.event_id = del.id),
            tomb AS (INSERT INTO tombstones (id, reason) SELECT id, 'deleted' FROM del
                     ON CONFLICT (id) DO UPDATE SET reason = 'deleted', deleted_at = now())
       INSERT INTO pending_deletions (id, pubkey)
       SELECT t.id, t.pubkey FROM t
        WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = t.id)
          AND NOT EXISTS (SELECT 1 FROM tombstones b WHERE b.id = t.id)
       ON CONFLICT DO NOTHING`,
      [eIds, ePubkeys],
    );
  }
  if (aKinds.length > 0) {
    await client.query(
      `WITH t AS (SELECT kind, pubkey, d, max(until) AS until
                    FROM unnest($1::int4[], $2::text[], $3::text[], $4::int8[]) AS t(kind, pubkey, d, until)
                   GROUP BY 1, 2, 3),
            up AS (INSERT INTO address_deletions (kind, pubkey, d, deleted_until) SELECT kind, pubkey, d, until FROM t
                   ON CONFLICT (pubkey, kind, d)
                   DO UPDATE SET deleted_until = GREATEST(address_deletions.deleted_until, EXCLUDED.deleted_until)),
            del AS (DELETE FROM events e USING t
                     WHERE e.kind = t.kind AND e.pubkey = t.pubkey AND e.d_tag = t.d AND e.created_at <= t.until
                    RETURNING e.id),
            dt AS (DELETE FROM event_tags et USING del WHERE et.event_id = del.id)
       INSERT INTO tombstones (id, reason) SELECT id, 'deleted' FROM del
       ON CONFLICT (id) DO UPDATE SET reason = 'deleted', deleted_at = now()`,
      [aKinds, aPubkeys, aDs, aUntil],
    );
  }
}


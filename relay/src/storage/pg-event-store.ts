import pg from 'pg';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/schema.js';
import type { NostrEvent } from '../nostr/event.js';
import { compareNewestFirst, type Filter } from '../nostr/filter.js';
import { DELETION_KIND, dTag, expirationOf, kindClass, supersedes } from '../nostr/kinds.js';
import { runMigrations } from './migrations.js';
import { buildFilterQuery } from './sql-filter.js';
import { encodeText, needsEscape } from './text-encoding.js';
import { type EventStore, type IdState, type SaveOutcome, type StoredEvent, StorageError } from './types.js';

/** The RelayConfig keys the store uses (a whole RelayConfig fits). */
export type PgStoreConfig = Pick<
  RelayConfig,
  'databaseUrl' | 'dbPoolSize' | 'dbStatementTimeoutMs' | 'dbConnectTimeoutMs' | 'dbBatchSize'
>;

export interface PgEventStoreExtras {
  /** Cap on rows one filter may return when it carries no (or a larger) limit. Default 5000. */
  maxQueryLimit?: number;
  /** Default 500 ms. */
  pingTimeoutMs?: number;
  /** Clock in seconds; tests move it to check expiration. */
  now?: () => number;
  /**
   * Write transactions in flight at once (default 2). A second one overlaps the first's commit flush and
   * round trips; correctness between them rests on the same advisory locks that order several relays.
   */
  maxConcurrentBatches?: number;
}

export interface StoreStats {
  /** Write transactions committed. */
  transactions: number;
  /** Events carried by those transactions. */
  batchedEvents: number;
  largestBatch: number;
}

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

interface Pending {
  item: StoredEvent;
  resolve(outcome: SaveOutcome): void;
  reject(err: unknown): void;
}

/** One event ready for SQL: every column already computed. */
interface Row {
  ev: NostrEvent;
  raw: string;
  dTag: string | null;
  address: string | null;
  expiresAt: number | null;
  tags: [string, string][];
}

interface LookupWaiter {
  ids: string[];
  resolve(m: Map<string, IdState>): void;
  reject(err: unknown): void;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Maps a pg/network error to a StorageError code; anything unknown stays a generic 'database' failure. */
export function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let mapped = 'database';
  if (CONNECTION_CODES.has(code)) mapped = 'connection';
  else if (code === '57P01' || code === '57P02') mapped = 'admin-shutdown';
  else if (code === '57P03') mapped = 'unavailable';
  else if (code === '53300' || code === '53400') mapped = 'too-many-connections';
  else if (code === '57014') mapped = 'statement-timeout';
  else if (code.startsWith('08')) mapped = 'connection';
  else if (/timeout exceeded when trying to connect/i.test(message)) mapped = 'pool-exhausted';
  else if (/connection timeout|Query read timeout/i.test(message)) mapped = 'timeout';
  else if (/Connection terminated|not queryable|Client was closed|Cannot use a pool after calling end/i.test(message)) mapped = 'connection';
  return new StorageError(`${what}: ${message}`, mapped, { cause: err });
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

/** Errors caused by the data of some event rather than by the database being unwell. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function parseAddress(value: string): { kind: number; pubkey: string; d: string } | null {
  const first = value.indexOf(':');
  const second = first < 0 ? -1 : value.indexOf(':', first + 1);
  if (second < 0) return null;
  const kindText = value.slice(0, first);
  if (!/^\d{1,10}$/.test(kindText)) return null;
  return { kind: Number(kindText), pubkey: value.slice(first + 1, second), d: value.slice(second + 1) };
}

/**
 * PostgreSQL EventStore with group commit: saves queue up while the write transactions in flight (a small fixed
 * number) run, and the queue is written as the next batch, up to dbBatchSize events per transaction.
 */
export class PgEventStore implements EventStore {
  readonly pool: pg.Pool;
  readonly stats: StoreStats = { transactions: 0, batchedEvents: 0, largestBatch: 0 };
  private readonly log: Logger;
  private readonly batchSize: number;
  private readonly maxQueryLimit: number;
  private readonly pingTimeoutMs: number;
  private readonly now: () => number;
  private queue: Pending[] = [];
  private readonly maxInFlight: number;
  private inFlight = new Set<Promise<void>>();
  private flushScheduled = false;
  private lookupWaiters: LookupWaiter[] = [];
  private closed = false;

  constructor(opts: PgStoreConfig, logger: Logger, extras: PgEventStoreExtras = {}) {
    this.log = logger;
    this.batchSize = Math.max(1, opts.dbBatchSize);
    this.maxQueryLimit = extras.maxQueryLimit ?? 5000;
    this.pingTimeoutMs = extras.pingTimeoutMs ?? 500;
    this.now = extras.now ?? nowSeconds;
    this.maxInFlight = Math.max(1, Math.min(extras.maxConcurrentBatches ?? 2, opts.dbPoolSize - 1));
    this.pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.dbPoolSize,
      connectionTimeoutMillis: opts.dbConnectTimeoutMs,
      statement_timeout: opts.dbStatementTimeoutMs,
      // Client-side guard for a server that stops answering without closing the socket (a partitioned network):
      // statement_timeout alone never fires there.
      query_timeout: opts.dbStatementTimeoutMs + 2000,
      keepAlive: true,
      application_name: 'nostr-relay-store',
    });
    // An idle client losing its connection emits here; without a listener that would crash the process.
    this.pool.on('error', (err) => this.log.warn({ err }, 'idle PostgreSQL connection failed'));
  }

  /**
   * Checks out a client with an 'error' listener for as long as it is held: pg-pool only listens while a client
   * is idle, and a connection dying under a checked-out client would otherwise crash the process. The error also
   * reaches the running query, which is where callers see it.
   */
  private async checkout(): Promise<{ client: pg.PoolClient; release(err?: Error): void }> {
    const client = await this.pool.connect();
    const onError = (err: Error): void => this.log.warn({ err }, 'PostgreSQL connection failed while in use');
    client.on('error', onError);
    return {
      client,
      release: (err?: Error) => {
        client.removeListener('error', onError);
        client.release(err);
      },
    };
  }

  async migrate(): Promise<void> {
    try {
      await runMigrations(this.pool, this.log);
    } catch (err) {
      throw toStorageError(err, 'migration failed');
    }
  }

  // ---------------------------------------------------------------- writes

  save(item: StoredEvent): Promise<SaveOutcome> {
    if (this.closed) return Promise.reject(new StorageError('store is closed', 'closed'));
    return new Promise<SaveOutcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.inFlight.size >= this.maxInFlight || this.flushScheduled) return;
    this.flushScheduled = true;
    // Let the rest of this tick's saves join the first batch instead of sending a batch of one.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight.size < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchSize);
      const run: Promise<void> = this.writeBatch(batch).finally(() => {
        this.inFlight.delete(run);
        // Whatever queued up meanwhile becomes the next batch.
        this.flush();
      });
      this.inFlight.add(run);
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const outcomes = new Map<Pending, SaveOutcome>();
    // The first submission of an id is written; later copies in the same batch share its outcome.
    const primaries = new Map<string, Pending>();
    const rows = new Map<Pending, Row>();
    const now = this.now();
    for (const p of batch) {
      const ev = p.item.event;
      if (primaries.has(ev.id)) continue;
      primaries.set(ev.id, p);
      const early = this.precheck(ev, now);
      if (early) outcomes.set(p, early);
      else rows.set(p, this.toRow(p.item));
    }
    try {
      if (rows.size > 0) {
        const decided = await this.writeRowsSplittingBadApples([...rows.values()]);
        for (const [p, row] of rows) outcomes.set(p, decided.get(row.ev.id)!);
      }
    } catch (err) {
      const failure = toStorageError(err, 'saving events failed');
      this.log.warn({ err: failure, code: failure.code, events: batch.length }, 'write batch failed');
      for (const p of batch) p.reject(failure);
      return;
    }
    for (const p of batch) {
      const primary = primaries.get(p.item.event.id)!;
      const outcome = outcomes.get(primary)!;
      p.resolve(p === primary || outcome.status !== 'stored' ? outcome : { status: 'duplicate' });
    }
  }

  /** Refusals that need no database. */
  private precheck(ev: NostrEvent, now: number): SaveOutcome | null {
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

  private toRow(item: StoredEvent): Row {
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

  /**
   * Writes rows in one transaction; if that fails because of some event's data, retries them in halves so only
   * the offending event is refused. Infrastructure errors propagate and fail the whole batch.
   */
  private async writeRowsSplittingBadApples(rows: Row[]): Promise<Map<string, SaveOutcome>> {
    try {
      return await this.writeRows(rows);
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (rows.length === 1) {
        this.log.warn({ err, id: rows[0]!.ev.id }, 'event refused by the database');
        return new Map([[rows[0]!.ev.id, { status: 'rejected', reason: 'error: the database refused this event' }]]);
      }
      // Halving finds one bad event in about 2*log2(n) small transactions instead of n.
      this.log.warn({ err, events: rows.length }, 'data error in write batch; retrying it in halves');
      const half = Math.ceil(rows.length / 2);
      const all = await this.writeRowsSplittingBadApples(rows.slice(0, half));
      for (const [id, o] of await this.writeRowsSplittingBadApples(rows.slice(half))) all.set(id, o);
      return all;
    }
  }

  private async writeRows(rows: Row[]): Promise<Map<string, SaveOutcome>> {
    const { client, release } = await this.checkout();
    let broken: Error | undefined;
    try {
      const hasDeletion = rows.some((r) => r.ev.kind === DELETION_KIND);
      // One round trip: BEGIN plus the write lock (constants only, so the simple protocol is safe here).
      await client.query(
        `BEGIN; SELECT ${hasDeletion ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared'}(${WRITE_LOCK[0]}, ${WRITE_LOCK[1]})`,
      );
      const result = await this.applyRows(client, rows, hasDeletion);
      await client.query('COMMIT');
      this.stats.transactions += 1;
      this.stats.batchedEvents += rows.length;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, rows.length);
      return result;
    } catch (err) {
      if (!isDataError(err)) broken = err instanceof Error ? err : new Error(String(err));
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The original error is what the callers need; a failed rollback just means the connection is gone.
        broken ??= rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        this.log.debug({ err: rollbackErr }, 'rollback failed');
      }
      throw err;
    } finally {
      // Passing an error discards the connection instead of returning a possibly broken one to the pool.
      release(broken);
    }
  }

  private async applyRows(client: pg.PoolClient, rows: Row[], hasDeletion: boolean): Promise<Map<string, SaveOutcome>> {
    const out = new Map<string, SaveOutcome>();
    const addresses = [...new Set(rows.flatMap((r) => (r.address === null ? [] : [r.address])))];
    if (!hasDeletion && addresses.length === 0) {
      // Fast path for plain regular events: the known-id check and both inserts run as one statement.
      const { inserted, known } = await this.insertRows(client, rows, true);
      const newlyDeleted: string[] = [];
      for (const row of rows) {
        const id = row.ev.id;
        const verdict = this.knownVerdict(known.get(id));
        if (verdict) {
          out.set(id, verdict);
          if (known.get(id) === 'pending') newlyDeleted.push(id);
        } else out.set(id, inserted.has(id) ? { status: 'stored' } : { status: 'duplicate' });
      }
      await this.tombstoneDeleted(client, newlyDeleted);
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
      const verdict = this.knownVerdict(state.get(row.ev.id));
      if (verdict) {
        out.set(row.ev.id, verdict);
        if (state.get(row.ev.id) === 'pending') newlyDeleted.push(row.ev.id);
      } else candidates.push(row);
    }

    const replaced = await this.resolveAddresses(client, candidates, out);
    candidates = candidates.filter((r) => !out.has(r.ev.id));

    if (replaced.length > 0) {
      await client.query(
        `WITH del AS (DELETE FROM events WHERE id = ANY($1::text[]) RETURNING id),
              dt AS (DELETE FROM event_tags WHERE event_id = ANY($1::text[]))
         INSERT INTO tombstones (id, reason) SELECT id, 'replaced' FROM del ON CONFLICT (id) DO NOTHING`,
        [replaced],
      );
    }
    await this.tombstoneDeleted(client, newlyDeleted);

    const { inserted } = await this.insertRows(client, candidates, false);
    for (const row of candidates) out.set(row.ev.id, inserted.has(row.ev.id) ? { status: 'stored' } : { status: 'duplicate' });

    const deletions = candidates.filter((r) => r.ev.kind === DELETION_KIND && inserted.has(r.ev.id));
    if (deletions.length > 0) await this.applyDeletions(client, deletions);
    return out;
  }

  /** Outcome for an id the database already knows: stored, tombstoned, or deleted in advance by its author. */
  private knownVerdict(state: string | undefined): SaveOutcome | null {
    if (state === 'deleted' || state === 'pending') return { status: 'rejected', reason: REASON_DELETED };
    if (state === 'replaced') return { status: 'rejected', reason: REASON_NEWER };
    if (state === 'stored') return { status: 'duplicate' };
    return null;
  }

  /** Events refused because their author's deletion came first get a tombstone, so lookup() reports them. */
  private async tombstoneDeleted(client: pg.PoolClient, ids: string[]): Promise<void> {
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
  private async resolveAddresses(client: pg.PoolClient, candidates: Row[], out: Map<string, SaveOutcome>): Promise<string[]> {
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
  private async insertRows(
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
  private async applyDeletions(client: pg.PoolClient, deletions: Row[]): Promise<void> {
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

  // ---------------------------------------------------------------- reads

  lookup(ids: string[]): Promise<Map<string, IdState>> {
    if (ids.length === 0) return Promise.resolve(new Map());
    return new Promise((resolve, reject) => {
      this.lookupWaiters.push({ ids, resolve, reject });
      // Calls made in the same tick share one query.
      if (this.lookupWaiters.length === 1) process.nextTick(() => void this.runLookups());
    });
  }

  private async runLookups(): Promise<void> {
    const waiters = this.lookupWaiters;
    this.lookupWaiters = [];
    const all = [...new Set(waiters.flatMap((w) => w.ids))];
    let found: Map<string, IdState>;
    try {
      const res = await this.pool.query<{ id: string; state: IdState }>(
        `SELECT id, 'stored' AS state FROM events WHERE id = ANY($1::text[])
         UNION ALL SELECT id, 'deleted' FROM tombstones WHERE id = ANY($1::text[])`,
        [all],
      );
      found = new Map();
      for (const r of res.rows) if (found.get(r.id) !== 'deleted') found.set(r.id, r.state);
    } catch (err) {
      const failure = toStorageError(err, 'id lookup failed');
      for (const w of waiters) w.reject(failure);
      return;
    }
    for (const w of waiters) {
      const m = new Map<string, IdState>();
      for (const id of w.ids) {
        const s = found.get(id);
        if (s) m.set(id, s);
      }
      w.resolve(m);
    }
  }

  async query(filters: Filter[], signal?: AbortSignal): Promise<StoredEvent[]> {
    if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
    const now = this.now();
    const queries = filters.map((f) => buildFilterQuery(f, now, this.maxQueryLimit)).filter((q) => q !== null);
    const results = await Promise.all(queries.map((q) => this.runQuery(q.text, q.values, signal)));
    const byId = new Map<string, StoredEvent>();
    for (const rows of results) {
      for (const r of rows) {
        if (byId.has(r.id)) continue;
        byId.set(r.id, { event: JSON.parse(r.raw) as NostrEvent, raw: r.raw });
      }
    }
    return [...byId.values()].sort((a, b) => compareNewestFirst(a.event, b.event));
  }

  private async runQuery(text: string, values: unknown[], signal?: AbortSignal): Promise<{ id: string; raw: string }[]> {
    let client: pg.PoolClient;
    let release: (err?: Error) => void;
    try {
      ({ client, release } = await this.checkout());
    } catch (err) {
      throw toStorageError(err, 'query failed');
    }
    let broken: Error | undefined;
    const onAbort = (): void => {
      const pid = (client as unknown as { processID: number | null }).processID;
      if (pid === null) return;
      // Cancelling server-side frees the backend now rather than when the statement timeout fires.
      this.pool.query('SELECT pg_cancel_backend($1)', [pid]).catch((err: unknown) => {
        this.log.warn({ err }, 'could not cancel an aborted query');
      });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
      const res = await client.query<{ id: string; raw: string }>(text, values);
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted');
      return res.rows;
    } catch (err) {
      if (signal?.aborted) throw new StorageError('query aborted', 'aborted', { cause: err });
      const failure = toStorageError(err, 'query failed');
      if (failure.code !== 'statement-timeout') broken = failure;
      throw failure;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      release(broken);
    }
  }

  async count(): Promise<number> {
    try {
      const res = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM events');
      return Number(res.rows[0]!.n);
    } catch (err) {
      throw toStorageError(err, 'count failed');
    }
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const probe = this.pool.query('SELECT 1');
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StorageError(`ping timed out after ${this.pingTimeoutMs} ms`, 'timeout')), this.pingTimeoutMs);
    });
    try {
      await Promise.race([probe, timeout]);
    } catch (err) {
      // The probe may still settle later; observe it so a late rejection is logged, not unhandled.
      probe.catch((late: unknown) => this.log.debug({ err: late }, 'late ping failure'));
      throw toStorageError(err, 'ping failed');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops taking writes, waits for queued ones to commit (or fail), then closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.inFlight.size > 0 || this.queue.length > 0 || this.flushScheduled) {
      if (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      else await new Promise((r) => setImmediate(r));
    }
    await this.pool.end();
  }
}

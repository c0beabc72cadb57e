import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * Ids, pubkeys and signatures are kept as lowercase hex TEXT with COLLATE "C" rather than bytea. bytea would halve
 * their size, but every value then has to be decoded on the way in and encoded on the way out (for the raw JSON,
 * for lookups, for filters), and the per-row conversion cost more than the smaller index saved in our batch-insert
 * benchmark. With the "C" collation btree comparisons are plain memcmp, and ordering by id matches the byte-wise
 * "lowest id wins" rule of NIP-01 exactly, which a locale collation would not guarantee.
 *
 * `raw` is the exact JSON served. `tags`/`content` are for operators and SQL introspection only; queries serve
 * `raw`. PostgreSQL TEXT/JSONB cannot hold U+0000 (nor lone surrogates in JSONB), so values containing them are
 * escaped reversibly (see encodeText in pg-event-store.ts); `raw` is JSON and therefore never contains a raw NUL.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'events, tags, tombstones, address deletions',
    sql: `
      CREATE TABLE events (
        id          TEXT COLLATE "C" NOT NULL,
        pubkey      TEXT COLLATE "C" NOT NULL,
        created_at  BIGINT NOT NULL,
        kind        INTEGER NOT NULL,
        tags        JSONB NOT NULL,
        content     TEXT NOT NULL,
        sig         TEXT COLLATE "C" NOT NULL,
        raw         TEXT NOT NULL,
        -- '' for replaceable kinds, the d tag for addressable ones, NULL for everything else
        d_tag       TEXT COLLATE "C",
        expires_at  BIGINT,
        received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        CONSTRAINT events_id_key UNIQUE (id)
      );
      CREATE INDEX events_created_idx ON events (created_at DESC, id);
      CREATE INDEX events_pubkey_kind_created_idx ON events (pubkey, kind, created_at DESC);
      CREATE INDEX events_kind_created_idx ON events (kind, created_at DESC);
      -- One version per replaceable/addressable address: a last line of defence behind the advisory locks.
      CREATE UNIQUE INDEX events_address_key ON events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
      CREATE INDEX events_expires_idx ON events (expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE event_tags (
        event_id   TEXT COLLATE "C" NOT NULL,
        name       TEXT COLLATE "C" NOT NULL,
        value      TEXT COLLATE "C" NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX event_tags_lookup_idx ON event_tags (name, value, created_at DESC);
      CREATE INDEX event_tags_event_idx ON event_tags (event_id);

      CREATE TABLE tombstones (
        id         TEXT COLLATE "C" PRIMARY KEY,
        reason     TEXT NOT NULL CHECK (reason IN ('deleted', 'replaced')),
        deleted_at TIMESTAMPTZ NOT NULL DEFAULT now()
      );

      -- An e-tag deletion that arrived before its target: applied when the target shows up with the same author.
      -- Kept apart from tombstones because until then nobody can tell whether the deleter was the author.
      CREATE TABLE pending_deletions (
        id         TEXT COLLATE "C" NOT NULL,
        pubkey     TEXT COLLATE "C" NOT NULL,
        deleted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (id, pubkey)
      );

      CREATE TABLE address_deletions (
        kind          INTEGER NOT NULL,
        pubkey        TEXT COLLATE "C" NOT NULL,
        d             TEXT COLLATE "C" NOT NULL,
        deleted_until BIGINT NOT NULL,
        PRIMARY KEY (pubkey, kind, d)
      );
    `,
  },
  {
    version: 2,
    name: 'bans of peers and clients (reputation layer)',
    sql: `
      -- One row per subject (peer node id or client IP). Unban sets lifted_at and keeps the row, so the count of
      -- automatic bans (strikes), which makes repeated bans longer, survives unbans and restarts.
      CREATE TABLE bans (
        subject      TEXT COLLATE "C" PRIMARY KEY,
        subject_type TEXT NOT NULL CHECK (subject_type IN ('peer', 'client')),
        reason       TEXT NOT NULL,
        origin       TEXT NOT NULL CHECK (origin IN ('auto', 'manual', 'import')),
        banned_at    TIMESTAMPTZ NOT NULL,
        expires_at   TIMESTAMPTZ,
        lifted_at    TIMESTAMPTZ,
        strikes      INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 3,
    name: 'per-peer cursors of the REQ catch-up (peers without NIP-77)',
    sql: `
      -- One row per peer URL (a third-party relay has no node id). created_at values, unix seconds: pulled_until is
      -- the newest event seen from the peer once a catch-up had filled the gap; pushed_until is our clock at the
      -- start of the last push pass that ended with the peer holding everything we had before it.
      CREATE TABLE peer_sync_cursors (
        peer_url     TEXT COLLATE "C" PRIMARY KEY,
        pulled_until BIGINT,
        pushed_until BIGINT,
        updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 4,
    name: 'change log of event times (keeps cached negentropy window fingerprints honest)',
    sql: `
      -- One row per statement that changed events, per 1024-second bucket of created_at it touched (bucket =
      -- created_at >> 10; NULL: everything, as for TRUNCATE). Written by triggers, so changes made behind the
      -- relay's back (psql, a restore) are seen too; buckets keep a bulk load to a few thousand rows. The relay
      -- reads rows by transaction id (xid8) so a transaction that commits late is never missed, and trims what it read.
      CREATE TABLE event_time_changes (
        xid    XID8 NOT NULL DEFAULT pg_current_xact_id(),
        bucket BIGINT
      );
      CREATE INDEX event_time_changes_xid_idx ON event_time_changes (xid);
      CREATE FUNCTION note_event_times_new() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO event_time_changes (bucket) SELECT DISTINCT created_at >> 10 FROM changed_rows; RETURN NULL; END $$;
      CREATE FUNCTION note_event_times_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO event_time_changes (bucket) VALUES (NULL); RETURN NULL; END $$;
      CREATE TRIGGER events_insert_times AFTER INSERT ON events REFERENCING NEW TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION note_event_times_new();
      CREATE TRIGGER events_delete_times AFTER DELETE ON events REFERENCING OLD TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION note_event_times_new();
      -- An UPDATE may move created_at: both old and new times count. Rare (the relay never updates events).
      CREATE TRIGGER events_update_times AFTER UPDATE ON events FOR EACH STATEMENT EXECUTE FUNCTION note_event_times_all();
      CREATE TRIGGER events_truncate_times AFTER TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION note_event_times_all();
    `,
  },
  {
    version: 5,
    name: 'a sequence number per change log row (rows read again are not applied twice)',
    sql: `ALTER TABLE event_time_changes ADD COLUMN seq BIGSERIAL;`,
  },
];

/** Arbitrary constant: the advisory lock every relay takes while migrating, so concurrent starts serialise. */
const MIGRATION_LOCK_KEY = 0x6e6f7374720001n;

/** Applies pending migrations in one transaction under an advisory lock; safe to run from several relays at once. */
export async function runMigrations(pool: pg.Pool, logger: Logger): Promise<number[]> {
  const client = await pool.connect();
  // pg-pool listens for errors only on idle clients; a connection dying mid-migration must not crash the process.
  const onError = (err: Error): void => logger.warn({ err }, 'PostgreSQL connection failed during migration');
  client.on('error', onError);
  let failed: unknown;
  try {
    await client.query('BEGIN');
    // Taken before CREATE TABLE IF NOT EXISTS: concurrent IF NOT EXISTS can still collide in the catalog.
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    if (applied.length > 0) logger.info({ applied }, 'database migrations applied');
    return applied;
  } catch (err) {
    failed = err;
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      logger.warn({ err: rollbackErr }, 'rollback after failed migration also failed');
    });
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(failed instanceof Error ? failed : undefined);
  }
}

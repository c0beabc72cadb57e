// The ceiling of the database path, measured in the same run as the relay: the same rows written by plain `pg`
// clients straight into a fresh relay schema (events + event_tags, unnest batches like the relay's group commit),
// with no verification, no Redis, no WebSocket. The relay cannot ingest faster than this on the same machine.
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import pg from 'pg';
import type { VerifiedEvent } from 'nostr-tools/pure';
import { runMigrations } from '../../relay/dist/storage/migrations.js';

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function databaseCeiling(events: VerifiedEvent[], clients: number, batch: number): Promise<{ eventsPerSecond: number; ms: number }> {
  const name = `bench_ceiling_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:5432/${name}`, max: clients });
  // The DROP below (WITH FORCE) ends any connection still closing; that is not an error of the measurement.
  pool.on('error', () => undefined);
  try {
    await runMigrations(pool, pino({ level: 'silent' }));
    const batches: VerifiedEvent[][] = [];
    for (let i = 0; i < events.length; i += batch) batches.push(events.slice(i, i + batch));
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
      for (let b = batches[next++]; b; b = batches[next++]) await insertBatch(pool, b);
    }));
    const ms = performance.now() - started;
    return { eventsPerSecond: (events.length / ms) * 1000, ms };
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

async function insertBatch(pool: pg.Pool, b: VerifiedEvent[]): Promise<void> {
  const tags = b.flatMap((e) => e.tags.filter((t) => t[0]?.length === 1 && t[1] !== undefined).map((t) => [e.id, t[0]!, t[1]!, e.created_at] as const));
  await pool.query(
    `WITH ins AS (
       INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, raw)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int4[], $5::jsonb[], $6::text[], $7::text[], $8::text[])
       ON CONFLICT (id) DO NOTHING RETURNING id)
     INSERT INTO event_tags (event_id, name, value, created_at)
     SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::int8[]) t(event_id, name, value, created_at)
      WHERE t.event_id IN (SELECT id FROM ins)`,
    [
      b.map((e) => e.id), b.map((e) => e.pubkey), b.map((e) => e.created_at), b.map((e) => e.kind),
      b.map((e) => JSON.stringify(e.tags)), b.map((e) => e.content), b.map((e) => e.sig), b.map((e) => JSON.stringify(e)),
      tags.map((t) => t[0]), tags.map((t) => t[1]), tags.map((t) => t[2]), tags.map((t) => t[3]),
    ],
  );
}

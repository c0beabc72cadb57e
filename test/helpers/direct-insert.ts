// Events written straight into a relay's PostgreSQL, behind its back (as after a long partition or a restore).
import pg from 'pg';
import type { SignedEvent } from './malicious-node.js';

export async function insertDirectly(databaseUrl: string, events: SignedEvent[]): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let i = 0; i < events.length; i += 2000) {
      const batch = events.slice(i, i + 2000);
      await client.query(
        `INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, raw)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::jsonb[], $6::text[], $7::text[], $8::text[])`,
        [batch.map((e) => e.id), batch.map((e) => e.pubkey), batch.map((e) => e.created_at), batch.map((e) => e.kind), batch.map((e) => JSON.stringify(e.tags)), batch.map((e) => e.content), batch.map((e) => e.sig), batch.map((e) => JSON.stringify(e))],
      );
    }
  } finally {
    await client.end();
  }
}

/** Runs one statement against a relay's database (a change made behind its back). */
export async function sqlOn(databaseUrl: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

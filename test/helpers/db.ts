import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

export interface FreshDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

function uniqueSuffix(): string {
  return `${process.pid}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** Creates a uniquely named database so test files running in parallel never share tables. */
export async function freshDatabase(prefix = 'test'): Promise<FreshDatabase> {
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${uniqueSuffix()}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    // The name is generated from [a-z0-9_] only, so quoting it as an identifier is safe.
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      try {
        // WITH (FORCE) ends connections a test forgot to close (PostgreSQL 13+).
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface FreshRedisNamespace {
  url: string;
  prefix: string;
  cleanup(): Promise<void>;
}

/** A unique key prefix on the shared Redis; cleanup deletes only that prefix (SCAN + UNLINK, never FLUSH*). */
export function freshRedisNamespace(): FreshRedisNamespace {
  const prefix = `test:${uniqueSuffix()}:`;
  return {
    url: REDIS_URL,
    prefix,
    async cleanup() {
      const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      r.on('error', () => {
        // Connection problems surface as rejected commands below; this only stops an unhandled 'error' event.
      });
      await r.connect();
      try {
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await r.unlink(...keys);
        } while (cursor !== '0');
      } finally {
        r.disconnect();
      }
    },
  };
}

import { connect } from 'node:net';
import pg from 'pg';
import type { Logger } from 'pino';
import { toStorageError } from './pg-errors.js';
import { StorageError } from './types.js';

export interface PoolSettings {
  databaseUrl: string;
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  applicationName: string;
}

export function createPool(s: PoolSettings, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: s.databaseUrl,
    max: s.max,
    connectionTimeoutMillis: s.connectTimeoutMs,
    statement_timeout: s.statementTimeoutMs,
    // Client-side guard for a server that stops answering without closing the socket (a partitioned network):
    // statement_timeout alone never fires there.
    query_timeout: s.statementTimeoutMs + 2000,
    keepAlive: true,
    application_name: s.applicationName,
  });
  // An idle client losing its connection emits here; without a listener that would crash the process.
  pool.on('error', (err) => log.warn({ err, pool: s.applicationName }, 'idle PostgreSQL connection failed'));
  return pool;
}

export interface Checkout {
  client: pg.PoolClient;
  release(err?: Error): void;
}

/**
 * Checks out a client with an 'error' listener for as long as it is held: pg-pool only listens while a client
 * is idle, and a connection dying under a checked-out client would otherwise crash the process. The error also
 * reaches the running query, which is where callers see it.
 */
export async function checkout(pool: pg.Pool, log: Logger): Promise<Checkout> {
  const client = await pool.connect();
  const onError = (err: Error): void => log.warn({ err }, 'PostgreSQL connection failed while in use');
  client.on('error', onError);
  return {
    client,
    release: (err?: Error) => {
      client.removeListener('error', onError);
      client.release(err);
    },
  };
}

/**
 * Asks the server to cancel what this client is running, with the protocol's own CancelRequest on a fresh socket:
 * it needs no pooled connection, so it still works when every connection of the pool is busy (which is exactly when
 * aborted queries need cancelling).
 */
export function cancelRunningQuery(client: pg.PoolClient, log: Logger): void {
  const c = client as unknown as { processID: number | null; secretKey: number | null; host?: string; port?: number };
  if (c.processID === null || c.secretKey === null || typeof c.processID !== 'number' || typeof c.secretKey !== 'number') return;
  const msg = Buffer.alloc(16);
  msg.writeInt32BE(16, 0);
  msg.writeInt32BE(80877102, 4);
  msg.writeInt32BE(c.processID, 8);
  msg.writeInt32BE(c.secretKey, 12);
  const host = c.host ?? '127.0.0.1';
  const port = c.port ?? 5432;
  const sock = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
  sock.setTimeout(2000, () => sock.destroy());
  sock.on('error', (err) => log.warn({ err }, 'could not cancel an aborted query'));
  sock.on('connect', () => sock.end(msg));
}

/**
 * The health probe's own connection, outside every pool: a pool saturated by slow reads (or writes) must never look
 * like an outage. One `SELECT 1` at a time; a failed or timed-out probe drops the connection, and the next probe dials
 * a new one (within the same timeout), so a dead server and a dead socket are both reported as down.
 */
export class ProbeConnection {
  private client: pg.Client | null = null;

  constructor(
    private readonly databaseUrl: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const attempt = this.run();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StorageError(`ping timed out after ${this.timeoutMs} ms`, 'timeout')), this.timeoutMs);
    });
    try {
      await Promise.race([attempt, timeout]);
    } catch (err) {
      // The probe may still settle later; observe it so a late rejection is logged, not unhandled.
      attempt.catch((late: unknown) => this.log.debug({ err: late }, 'late ping failure'));
      this.drop();
      throw toStorageError(err, 'ping failed');
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    if (!this.client) {
      const client = new pg.Client({
        connectionString: this.databaseUrl,
        connectionTimeoutMillis: this.timeoutMs,
        statement_timeout: this.timeoutMs,
        keepAlive: true,
        application_name: 'nostr-relay-probe',
      });
      client.on('error', (err) => {
        this.log.debug({ err }, 'probe connection failed');
        if (this.client === client) this.client = null;
      });
      this.client = client;
      await client.connect();
    }
    await this.client.query('SELECT 1');
  }

  private drop(): void {
    const c = this.client;
    this.client = null;
    c?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

/**
 * The cluster's private PostgreSQL: its own data folder and port (never the system's 5432), started from the
 * installed binaries, with a `nostream` role and one database per node.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { asPostgres, run, waitFor } from './exec.js';

export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresOptions {
  dataDir: string;
  logFile: string;
  port: number;
  user: string;
  databases: string[];
}

const adminUrl = (port: number) => `postgres://postgres@127.0.0.1:${port}/postgres`;

function chownToPostgres(path: string): void {
  if (process.getuid?.() !== 0) return;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!passwd) throw new Error('running as root but there is no postgres user to run PostgreSQL as');
  const [, , uid, gid] = passwd.split(':');
  chownSync(path, Number(uid), Number(gid));
}

/** A probe: any failure to connect or query means "not ready", which is its answer, not an error to report. */
export async function postgresReady(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl(port), connectionTimeoutMillis: 1000 });
  // A dropped probe connection also emits 'error'; the awaited calls below already turn it into `false`.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    // Closing a connection that never opened fails; the probe's answer is already decided.
    await client.end().catch(() => undefined);
  }
}

/** initdb on first use, start, and make sure the role and the databases exist. Idempotent. */
export async function startPostgres(o: PostgresOptions): Promise<void> {
  mkdirSync(dirname(o.logFile), { recursive: true });
  mkdirSync(dirname(o.dataDir), { recursive: true });
  if (process.getuid?.() === 0) {
    // The postgres user must be able to reach its data folder inside ours (mkdtemp makes folders 0700).
    const parent = dirname(o.dataDir);
    chmodSync(parent, statSync(parent).mode | 0o011);
  }
  if (!existsSync(`${o.dataDir}/PG_VERSION`)) {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    chownToPostgres(o.dataDir);
    const [cmd, args] = asPostgres(`${PG_BIN}/initdb`, ['-D', o.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions', '--no-sync']);
    await run(cmd, args);
  }
  if (!existsSync(o.logFile)) {
    // pg_ctl (running as postgres) appends to the log: it must own it.
    await run('touch', [o.logFile]);
    chownToPostgres(o.logFile);
  }
  if (!(await postgresReady(o.port))) {
    // No unix socket: the cluster is reached over loopback TCP only, so a leftover socket dir cannot clash.
    const options = `-p ${o.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200`;
    const [cmd, args] = asPostgres(`${PG_BIN}/pg_ctl`, ['-D', o.dataDir, '-l', o.logFile, '-o', options, '-w', '-t', '60', 'start']);
    await run(cmd, args);
    await waitFor(`PostgreSQL on port ${o.port}`, () => postgresReady(o.port), 30_000);
  }
  const admin = new pg.Client({ connectionString: adminUrl(o.port) });
  await admin.connect();
  try {
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [o.user]);
    // Role and database names come from the layout ([a-z_]), so quoting them as identifiers is safe.
    if (role.rowCount === 0) await admin.query(`CREATE ROLE "${o.user}" LOGIN SUPERUSER`);
    for (const db of o.databases) {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (found.rowCount === 0) await admin.query(`CREATE DATABASE "${db}" OWNER "${o.user}"`);
    }
  } finally {
    await admin.end();
  }
}

export async function stopPostgres(dataDir: string): Promise<void> {
  if (!existsSync(`${dataDir}/postmaster.pid`)) return;
  const [cmd, args] = asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
  await run(cmd, args);
}

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = 'redis://127.0.0.1:6379/0';

export interface RelayChild {
  url: string;
  port: number;
  adminPort: number;
  child: ChildProcess;
  /** Last lines of the relay's stderr/stdout, for error messages. */
  tail(): string;
  /** Kills the relay, drops its database, deletes its Redis keys and data dir. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** A free loopback port (bound then released; the relay binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolvePort(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function deleteRedisPrefix(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => {
    // Failures surface as rejected commands; this only prevents an unhandled 'error' event.
  });
  await r.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/**
 * Starts `node relay/dist/main.js start` on loopback with a fresh PostgreSQL database, a random Redis key prefix and
 * a temporary data dir (or `options.dataDir`), and resolves once its WebSocket port accepts connections.
 */
export async function startRelayChild(extraArgs: string[] = [], options: { dataDir?: string; nodeArgs?: string[] } = {}): Promise<RelayChild> {
  const suffix = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const dbName = `bench_ingest_${suffix}`;
  const prefix = `bench:${suffix}:`;
  // A given data dir (e.g. one holding a node key made beforehand) is removed at cleanup like a fresh one.
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'bench-relay-'));
  // The name is built from [a-z0-9_] only, so quoting it as an identifier is safe.
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  const [port, adminPort] = [await freePort(), await freePort()];
  const args = [
    ...(options.nodeArgs ?? []),
    join(REPO_ROOT, 'relay/dist/main.js'), 'start',
    '--port', String(port),
    '--admin-port', String(adminPort),
    '--database-url', `postgres://postgres@127.0.0.1:5432/${dbName}`,
    '--redis-url', REDIS_URL,
    '--redis-key-prefix', prefix,
    '--data-dir', dataDir,
    // `{port}` in an argument is the relay's own port (e.g. --public-url ws://127.0.0.1:{port}, which peering needs).
    ...extraArgs.map((a) => a.replaceAll('{port}', String(port))),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    const errors: string[] = [];
    // WITH (FORCE) ends connections the relay left behind (PostgreSQL 13+).
    await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch((e: Error) => errors.push(`drop database: ${e.message}`));
    await deleteRedisPrefix(prefix).catch((e: Error) => errors.push(`redis cleanup: ${e.message}`));
    rmSync(dataDir, { recursive: true, force: true });
    if (errors.length) console.error(`cleanup problems: ${errors.join('; ')}`);
  };

  const relay: RelayChild = { url: `ws://127.0.0.1:${port}`, port, adminPort, child, tail: () => output, cleanup };
  try {
    await waitForPort(port, child, 30_000);
  } catch (err) {
    await cleanup();
    throw new Error(`${(err as Error).message}\n--- relay output ---\n${output.slice(-3000)}`);
  }
  return relay;
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`relay exited (${child.exitCode ?? child.signalCode}) during startup`);
    const open = await new Promise<boolean>((r) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`relay did not open port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A free TCP port on loopback (released before use; the window for a collision is tiny). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const asRoot = process.getuid?.() === 0;

/**
 * Cleanups for instances a test never stopped (it failed or forgot): run synchronously when the test process
 * exits, so no server keeps running and no temp dir stays behind.
 */
const atExit = new Set<() => void>();
process.once('exit', () => {
  for (const cleanup of atExit) cleanup();
});

function killQuietly(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** PostgreSQL refuses to run as root: run its binaries as the postgres user then. */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args]] : [join(PG_BIN, bin), args];
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there are no children
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface PrivatePostgres {
  port: number;
  url: string;
  dataDir: string;
  /** Clean shutdown; removes the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL the postmaster and its backends (a crash); the data dir stays for start(). */
  kill(): Promise<void>;
  /** Starts again on the same port and data dir (crash recovery runs if it was killed). */
  start(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** fsync=off, synchronous_commit=off, full_page_writes=off: faster, for tests where durability is not the point. */
  fast?: boolean;
}

export async function startPrivatePostgres(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const root = mkdtempSync(join(tmpdir(), 'pg-private-'));
  const dataDir = join(root, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
  }
  const [initBin, initArgs] = pgCommand('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  execFileSync(initBin, initArgs, { stdio: 'ignore' });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const settings = [
    `port=${port}`,
    'listen_addresses=127.0.0.1',
    `unix_socket_directories=${root}`,
    'max_connections=50',
    ...(opts.fast ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : []),
  ];
  let child: ChildProcess | null = null;

  const postmasterPid = (): number | null => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return null;
    }
  };

  const start = async (): Promise<void> => {
    const log = openSync(join(root, 'postgres.log'), 'a');
    const [bin, args] = pgCommand('postgres', ['-D', dataDir, ...settings.flatMap((s) => ['-c', s])]);
    child = spawn(bin, args, { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    child.unref();
    await waitFor(
      `private PostgreSQL on ${port}`,
      async () => {
        const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 500 });
        c.on('error', () => {
          // connection failures while polling are expected; the query result tells us.
        });
        try {
          await c.connect();
          await c.query('SELECT 1');
          return true;
        } catch {
          return false;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      30_000,
    );
  };

  const kill = async (): Promise<void> => {
    const pid = postmasterPid();
    if (pid === null) throw new Error('private PostgreSQL is not running');
    const children = childPids(pid);
    process.kill(pid, 'SIGKILL');
    // Backends notice a dead postmaster only lazily; kill them too so the restart finds no shared memory users.
    for (const c of children) if (isAlive(c)) process.kill(c, 'SIGKILL');
    await waitFor('killed PostgreSQL to exit', async () => !isAlive(pid) && children.every((c) => !isAlive(c)), 10_000);
  };

  const stop = async (): Promise<void> => {
    const pid = postmasterPid();
    if (pid !== null && isAlive(pid)) {
      const [bin, args] = pgCommand('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w']);
      execFileSync(bin, args, { stdio: 'ignore' });
    }
    rmSync(root, { recursive: true, force: true });
  };

  const emergency = (): void => {
    const pid = postmasterPid();
    if (pid !== null && isAlive(pid)) {
      const children = childPids(pid);
      killQuietly(pid);
      for (const c of children) killQuietly(c);
    }
    rmSync(root, { recursive: true, force: true });
  };
  atExit.add(emergency);
  const stopAndForget = async (): Promise<void> => {
    await stop();
    atExit.delete(emergency);
  };

  await start();
  return { port, url, dataDir, stop: stopAndForget, kill, start };
}

export interface PrivateRedis {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** Starts again on the same port (empty: nothing is persisted). */
  start(): Promise<void>;
}

async function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-private-'));
  const port = await freePort();
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log')],
      { stdio: 'ignore' },
    );
    child.unref();
    await waitFor(`private Redis on ${port}`, () => redisAnswers(port), 10_000);
  };

  const exited = async (c: ChildProcess): Promise<void> => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise((r) => c.once('exit', r));
  };

  const kill = async (): Promise<void> => {
    if (!child) throw new Error('private Redis is not running');
    const c = child;
    child = null;
    c.kill('SIGKILL');
    await exited(c);
  };

  const stop = async (): Promise<void> => {
    if (child) {
      const c = child;
      child = null;
      c.kill('SIGTERM');
      await exited(c);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const emergency = (): void => {
    killQuietly(child?.pid);
    rmSync(dir, { recursive: true, force: true });
  };
  atExit.add(emergency);
  const stopAndForget = async (): Promise<void> => {
    await stop();
    atExit.delete(emergency);
  };

  await start();
  return { port, url: `redis://127.0.0.1:${port}/0`, stop: stopAndForget, kill, start };
}

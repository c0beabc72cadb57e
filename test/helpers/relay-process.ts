import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freshDatabase, freshRedisNamespace } from './db.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const RELAY_MAIN = join(REPO_ROOT, 'relay/dist/main.js');

export interface RelayProcessOptions {
  /** Use this database instead of a fresh one (e.g. a private PostgreSQL or a sidecar link). */
  databaseUrl?: string;
  redisUrl?: string;
  redisKeyPrefix?: string;
  dataDir?: string;
  /** Extra CLI flags, e.g. ['--max-subscriptions', '3']. */
  args?: string[];
  env?: Record<string, string>;
  /** Fixed ports (to restart a relay where clients expect it); default: ephemeral. */
  port?: number;
  adminPort?: number;
}

export interface RelayProcess {
  url: string;
  adminUrl: string;
  port: number;
  adminPort: number;
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  dataDir: string;
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line matching, among lines from index `fromIndex` on (default: all so far). */
  waitForLog(pattern: RegExp, timeoutMs?: number, fromIndex?: number): Promise<Record<string, unknown>>;
  admin<T = unknown>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Drops the fresh database and Redis keys this helper created (after stop). */
  cleanup(): Promise<void>;
}

/**
 * A data dir holding a fresh node key, so a relay's node id is known before it starts (another relay can then
 * allow-list it with --peer-node-ids). Pass it as `dataDir`; remove it with `rmSync` after the relay's cleanup.
 */
export async function nodeKeyDataDir(): Promise<{ dataDir: string; nodeId: string }> {
  const { generateSecretKey, getPublicKey } = await import('nostr-tools/pure');
  const secret = generateSecretKey();
  const dataDir = mkdtempSync(join(tmpdir(), 'relay-data-'));
  writeFileSync(join(dataDir, 'node.key'), Buffer.from(secret).toString('hex') + '\n', { mode: 0o600 });
  return { dataDir, nodeId: getPublicKey(secret) };
}

/** A port free right now (for a relay whose public_url must name its own port before it starts). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts `node relay/dist/main.js start` as a real child process on ephemeral ports and waits until it serves. */
export async function startRelay(options: RelayProcessOptions = {}): Promise<RelayProcess> {
  // Peering needs public_url: a relay dialled directly (no proxy) is reached at its own port.
  const peering = (options.args ?? []).some((a) => a === '--peers' || a === '--peer-node-ids');
  if (peering && !(options.args ?? []).includes('--public-url')) {
    const port = options.port ?? (await freePort());
    options = { ...options, port, args: [...(options.args ?? []), '--public-url', `ws://127.0.0.1:${port}`] };
  }
  const db = options.databaseUrl ? undefined : await freshDatabase('relay');
  const ns = options.redisUrl || options.redisKeyPrefix ? undefined : await freshRedisNamespace();
  const databaseUrl = options.databaseUrl ?? db!.url;
  const redisUrl = options.redisUrl ?? ns?.url ?? 'redis://127.0.0.1:6379/0';
  const redisKeyPrefix = options.redisKeyPrefix ?? ns?.prefix ?? `test:${process.pid}:${Date.now()}:`;
  const ownDataDir = !options.dataDir;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'relay-data-'));
  const args = [
    RELAY_MAIN, 'start',
    '--port', String(options.port ?? 0),
    '--admin-port', String(options.adminPort ?? 0),
    '--database-url', databaseUrl,
    '--redis-url', redisUrl,
    '--redis-key-prefix', redisKeyPrefix,
    '--data-dir', dataDir,
    '--log-level', 'debug',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: Record<string, unknown>) => void }> = [];
  let stderr = '';
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { msg: line };
      }
      logs.push(parsed);
      if (process.env.RELAY_TEST_LOGS) process.stderr.write(line + '\n');
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(String(parsed.msg))) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(parsed);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));

  const waitForLog = (pattern: RegExp, timeoutMs = 15_000, fromIndex = 0) =>
    new Promise<Record<string, unknown>>((resolveLog, reject) => {
      const seen = logs.slice(fromIndex).find((l) => pattern.test(String(l.msg)));
      if (seen) return resolveLog(seen);
      const timer = setTimeout(() => reject(new Error(`relay did not log ${pattern} within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
      waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolveLog(line)) });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`relay exited (${code}) before logging ${pattern}; stderr: ${stderr.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`));
      });
    });

  let started: Record<string, unknown>;
  try {
    started = await waitForLog(/^relay started$/, 30_000);
  } catch (err) {
    // A relay that missed its start deadline must not outlive the test file (it would hang it until tap's timeout).
    child.kill('SIGKILL');
    throw err;
  }
  const port = Number(started.relayPort);
  const adminPort = Number(started.adminPort);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  return {
    url: `ws://127.0.0.1:${port}`,
    adminUrl,
    port,
    adminPort,
    databaseUrl,
    redisUrl,
    redisKeyPrefix,
    dataDir,
    child,
    logs,
    waitForLog,
    async admin<T>(path: string, init?: RequestInit) {
      const res = await fetch(adminUrl + path, init);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Prometheus text and empty bodies stay strings.
      }
      return { status: res.status, body: body as T };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async cleanup() {
      await db?.drop();
      await ns?.cleanup();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

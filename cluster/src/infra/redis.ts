/** The cluster's private Redis: its own port (never 6379), no persistence, pid and log in the cluster folder. */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { isAlive } from '../state.js';
import { run, sleep, waitFor } from './exec.js';

export interface RedisOptions {
  dir: string;
  pidFile: string;
  logFile: string;
  port: number;
}

/** A probe: any failure to connect or PING means "not ready", which is its answer, not an error to report. */
export async function redisReady(port: number): Promise<boolean> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  // ioredis also emits 'error' for the refused connection that connect() rejects with below.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function startRedis(o: RedisOptions): Promise<void> {
  if (await redisReady(o.port)) return;
  mkdirSync(o.dir, { recursive: true });
  await run('redis-server', [
    '--bind', '127.0.0.1', '--port', String(o.port), '--save', '', '--appendonly', 'no',
    '--daemonize', 'yes', '--dir', o.dir, '--pidfile', o.pidFile, '--logfile', o.logFile, '--databases', '16',
  ]);
  await waitFor(`Redis on port ${o.port}`, () => redisReady(o.port), 15_000);
}

export async function stopRedis(o: RedisOptions): Promise<void> {
  if (!existsSync(o.pidFile)) return;
  const pid = Number(readFileSync(o.pidFile, 'utf8').trim());
  if (!pid || !isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

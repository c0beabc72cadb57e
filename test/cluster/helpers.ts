// A real local cluster for tests: free ports, a temporary folder, the same code path as `make up`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { down, up } from '../../cluster/src/cluster.js';
import { paths } from '../../cluster/src/layout.js';
import type { ClusterState } from '../../cluster/src/state.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLUSTER_CLI = join(REPO_ROOT, 'cluster/dist/cli/cluster.js');
export const CHAOS_CLI = join(REPO_ROOT, 'cluster/dist/cli/chaos.js');

/** The supervisor and CLIs run compiled: build the cluster package (incremental, a no-op when up to date). */
export function buildCluster(): void {
  execFileSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-b', join(REPO_ROOT, 'cluster')], { stdio: 'inherit' });
}

export interface TestCluster {
  dir: string;
  state: ClusterState;
  stop(): Promise<void>;
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: nothing left to stop.
  }
}

function pidIn(file: string): number | null {
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]!.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Last resort when the test process dies without its teardown (tap's file timeout, Ctrl-C): kill everything the
 * cluster started, synchronously, so no supervisor, relay, sidecar, PostgreSQL or Redis outlives the test.
 */
function killClusterSync(dir: string): void {
  const p = paths({ dir });
  const supervisor = pidIn(p.supervisorPid);
  if (supervisor) signalPid(supervisor, 'SIGKILL');
  if (existsSync(p.supervisorState)) {
    for (const proc of JSON.parse(readFileSync(p.supervisorState, 'utf8')) as Array<{ pid: number | null }>) if (proc.pid) signalPid(proc.pid, 'SIGKILL');
  }
  const redis = pidIn(p.redisPid);
  if (redis) signalPid(redis, 'SIGKILL');
  // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends down with it.
  const postgres = pidIn(join(p.pgData, 'postmaster.pid'));
  if (postgres) signalPid(postgres, 'SIGQUIT');
  rmSync(dir, { recursive: true, force: true });
}

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGALRM'];

function guard(dir: string): () => void {
  const onExit = () => killClusterSync(dir);
  const onSignal = (signal: NodeJS.Signals) => {
    killClusterSync(dir);
    unguard();
    // Re-raise so the signal does what it would have done without us.
    process.kill(process.pid, signal);
  };
  const unguard = () => {
    process.off('exit', onExit);
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
  return unguard;
}

export async function startTestCluster(nodes: number, heartbeatTimeoutSeconds = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-test-'));
  const log: string[] = [];
  const unguard = guard(dir);
  try {
    const state = await up({ dir, root: REPO_ROOT, nodes, freePorts: true, heartbeatTimeoutSeconds, say: (l) => log.push(l), readyTimeoutMs: 60_000 });
    return {
      dir,
      state,
      stop: async () => {
        await down({ dir });
        unguard();
      },
    };
  } catch (err) {
    unguard();
    await down({ dir, keep: true }).catch(() => undefined);
    throw new Error(`cluster did not come up (folder kept: ${dir}): ${(err as Error).message}\n${log.join('\n')}`);
  }
}

/** Runs one of the CLIs against the test cluster's folder; returns exit code and output. */
export function cli(file: string, dir: string, args: string[], env: Record<string, string> = {}): { code: number; out: string } {
  try {
    const out = execFileSync(process.execPath, [file, '--dir', dir, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}

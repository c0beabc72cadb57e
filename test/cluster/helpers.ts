// A real local cluster for tests: free ports, a temporary folder, the same code path as `make up`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { down, up } from '../../cluster/src/cluster.js';
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

export async function startTestCluster(nodes: number, heartbeatTimeoutSeconds = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-test-'));
  const log: string[] = [];
  try {
    const state = await up({ dir, root: REPO_ROOT, nodes, freePorts: true, heartbeatTimeoutSeconds, say: (l) => log.push(l), readyTimeoutMs: 60_000 });
    return { dir, state, stop: () => down({ dir }) };
  } catch (err) {
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

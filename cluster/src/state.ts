/** cluster.json (what `make up` decided) and processes.json (what the supervisor is running right now). */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { paths, type ClusterLayout } from './layout.js';

export interface ProcessSpec {
  name: string;
  kind: 'relay' | 'sidecar';
  node: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  logFile: string;
}

export interface ClusterState {
  layout: ClusterLayout;
  processes: ProcessSpec[];
  createdAt: string;
}

export interface ProcessStatus {
  name: string;
  pid: number | null;
  running: boolean;
  restarts: number;
  startedAt: string | null;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
}

export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

export const DEFAULT_DIR = resolve(process.env.CLUSTER_DIR ?? '.cluster');

export function readState(dir: string): ClusterState {
  const file = paths({ dir }).state;
  if (!existsSync(file)) throw new Error(`no cluster at ${dir} (${file} missing): run \`make up\` first`);
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
}

export function readProcesses(dir: string): ProcessStatus[] {
  const file = paths({ dir }).supervisorState;
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as ProcessStatus[];
}

export function supervisorPid(dir: string): number | null {
  const file = paths({ dir }).supervisorPid;
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What both CLIs share: the cluster folder option, the repo root, error reporting and exit codes. */
import { resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const DEFAULT_CLUSTER_DIR = process.env.CLUSTER_DIR ?? resolve(REPO_ROOT, '.cluster');

export const say = (line: string) => process.stdout.write(line + '\n');

// `make logs | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/** Runs a command body; an error is printed as one readable line (stack with DEBUG=1) and exits errorCode. */
export async function runCommand(body: () => Promise<number | void>, errorCode = 1): Promise<void> {
  try {
    const code = await body();
    process.exitCode = code ?? 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    if (process.env.DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = errorCode;
  }
}

export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

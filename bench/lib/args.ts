import { parseArgs } from 'node:util';

/** Integer option with bounds; exits with a usage error rather than benchmarking nonsense. */
export function intOption(values: Record<string, unknown>, name: string, fallback: number, min = 1): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${String(raw)}`);
    process.exit(2);
  }
  return n;
}

export { parseArgs };

/** Benchmarks only ever talk to this machine. */
export function assertLoopback(url: string): URL {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    console.error(`refusing non-loopback target ${url}: benchmarks only touch 127.0.0.1/::1`);
    process.exit(2);
  }
  return u;
}

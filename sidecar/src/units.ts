/**
 * Parsing of the human units SREs write in profiles: durations ("100ms", "30s",
 * "500us", or a bare number of milliseconds) and rates ("1mbps", "512kbps").
 */

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?$/;
const DURATION_SCALE: Record<string, number> = { us: 0.001, 'µs': 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Returns milliseconds, or throws a message suitable for a validation error. */
export function parseDurationMs(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const m = DURATION_RE.exec(value.trim());
    if (m) return Number(m[1]) * DURATION_SCALE[m[2] ?? 'ms']!;
  }
  throw new Error(`expected a duration like "100ms", "30s" or a number of milliseconds, got ${JSON.stringify(value)}`);
}

/** Node timers overflow at 2^31 ms (a longer delay fires after 1 ms), so anything armed as a timer stays below. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration that will be armed as a timer: parseDurationMs, at most MAX_TIMER_MS. */
export function parseTimerMs(value: unknown): number {
  const ms = parseDurationMs(value);
  if (ms > MAX_TIMER_MS) throw new Error(`must be at most ${MAX_TIMER_MS} ms (about 24.8 days; longer timers overflow), got ${JSON.stringify(value)}`);
  return ms;
}

// tc/Chaos Mesh semantics: "bps" means bytes per second, "bit" means bits per second.
const RATE_RE = /^(\d+(?:\.\d+)?)\s*(bps|kbps|mbps|gbps|bit|kbit|mbit|gbit)$/i;
const RATE_BYTES: Record<string, number> = {
  bps: 1, kbps: 1000, mbps: 1_000_000, gbps: 1_000_000_000,
  bit: 1 / 8, kbit: 1000 / 8, mbit: 1_000_000 / 8, gbit: 1_000_000_000 / 8,
};

/** Returns KB/s (Toxiproxy's bandwidth unit) from "1mbps"-style strings or a bare KB/s number. */
export function parseRateKBps(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  if (typeof value === 'string') {
    const m = RATE_RE.exec(value.trim());
    if (m) return (Number(m[1]) * RATE_BYTES[m[2]!.toLowerCase()]!) / 1000;
  }
  throw new Error(`expected a rate like "1mbps", "512kbps", "8mbit" or a number of KB/s, got ${JSON.stringify(value)}`);
}

/** Percent strings as Chaos Mesh writes them ("25" or "25%") or fractions → a probability 0..1. */
export function parsePercent(value: unknown): number {
  const n = typeof value === 'string' ? Number(value.replace(/%$/, '')) : value;
  if (typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 100) return n / 100;
  throw new Error(`expected a percentage 0..100 like "25", got ${JSON.stringify(value)}`);
}

/**
 * Publish→OK latencies of the last `windowMs`, for the p50/p95/p99 that /admin/metrics reports.
 * A ring of samples bounded in size: memory stays flat under any load.
 */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(private readonly capacity = 8192, private readonly windowMs = 60_000) {
    this.samples = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  record(ms: number, now = Date.now()): void {
    this.samples[this.next] = ms;
    this.times[this.next] = now;
    this.next = (this.next + 1) % this.capacity;
    this.filled = Math.min(this.filled + 1, this.capacity);
  }

  percentiles(now = Date.now()): { p50: number; p95: number; p99: number; count: number } {
    const recent: number[] = [];
    for (let i = 0; i < this.filled; i++) if (now - this.times[i]! <= this.windowMs) recent.push(this.samples[i]!);
    if (recent.length === 0) return { p50: 0, p95: 0, p99: 0, count: 0 };
    recent.sort((a, b) => a - b);
    const at = (q: number) => round(recent[Math.min(recent.length - 1, Math.floor(q * recent.length))]!);
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99), count: recent.length };
  }
}

/** Events per second over a sliding window of one-second buckets. */
export class RateMeter {
  private readonly buckets = new Map<number, number>();
  constructor(private readonly windowSeconds = 10) {}

  mark(n = 1, now = Date.now()): void {
    const second = Math.floor(now / 1000);
    this.buckets.set(second, (this.buckets.get(second) ?? 0) + n);
    for (const key of this.buckets.keys()) if (key <= second - this.windowSeconds - 1) this.buckets.delete(key);
  }

  /** Average rate over the last full seconds of the window. */
  perSecond(now = Date.now()): number {
    const current = Math.floor(now / 1000);
    let total = 0;
    for (const [second, n] of this.buckets) if (second < current && second >= current - this.windowSeconds) total += n;
    return round(total / this.windowSeconds);
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

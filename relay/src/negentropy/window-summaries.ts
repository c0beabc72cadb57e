import type { TimeChangeListener } from './time-changes.js';

/** Count and NIP-77 fingerprint of the reconcilable events with since <= created_at <= until (inclusive seconds). */
export interface WindowSummary {
  since: number;
  /** Infinity: no upper end (the newest window). */
  until: number;
  count: number;
  fingerprint: Uint8Array;
  /** Earliest expires_at among the records (unix seconds; Infinity for none): the set changes then with no write. */
  expiresAt: number;
  /** Date.now() when computed. */
  storedAt: number;
}

interface Entry {
  since: number;
  until: number;
  /** null once something in the window changed: the boundaries are kept so the next plan reuses them. */
  summary: WindowSummary | null;
}

/**
 * Cached summaries of consecutive time windows, so an unchanged window is compared with a peer by its
 * fingerprint alone instead of loading its records again. Windows never overlap; a write invalidates the
 * windows overlapping the 1024-second bucket of its created_at (EventTimeChanges tells us, including writes
 * made behind our back). A summary is
 * also dropped once one of its events expires, and after `ttlMs` regardless, which bounds how long any change
 * the log could not tell us about can hide. At most `maxEntries` windows are kept.
 */
export class WindowSummaries implements TimeChangeListener {
  private entries: Entry[] = [];

  constructor(private readonly maxEntries = 10_000, private readonly ttlMs = 10 * 60_000) {}

  get size(): number {
    return this.entries.length;
  }

  /** The valid summary of exactly [since, until], if any. */
  get(since: number, until: number, nowMs = Date.now()): WindowSummary | null {
    const e = this.entries[this.indexOf(since)];
    if (!e || e.since !== since || e.until !== until) return null;
    return this.valid(e, nowMs);
  }

  /** The valid summary of the window that starts at `since`, whatever its end. */
  startingAt(since: number, nowMs = Date.now()): WindowSummary | null {
    const e = this.entries[this.indexOf(since)];
    return e && e.since === since ? this.valid(e, nowMs) : null;
  }

  /** The start of the window holding t (valid or not), to line a sync range up with known boundaries. */
  startOfWindowHolding(t: number): number | null {
    const e = this.entries[this.indexOf(t)];
    return e && e.since <= t && t <= e.until ? e.since : null;
  }

  /** The first known window boundary after t: a window planned from t ends before it, keeping later windows. */
  nextBoundaryAfter(t: number): number | null {
    let i = this.indexOf(t);
    if (i >= 0 && this.entries[i]!.since <= t) i++;
    return this.entries[i]?.since ?? null;
  }

  put(summary: WindowSummary): void {
    this.entries = this.entries.filter((e) => e.until < summary.since || e.since > summary.until);
    const at = this.indexOf(summary.since) + 1;
    this.entries.splice(at, 0, { since: summary.since, until: summary.until, summary });
    if (this.entries.length > this.maxEntries) this.evictOldest();
  }

  invalidate(range: { from: number; to: number } | null): void {
    if (range === null) {
      this.entries = [];
      return;
    }
    // From the window holding `from` (or the first after it) through every window starting by `to`.
    for (let i = Math.max(0, this.indexOf(range.from)); i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.since > range.to) break;
      if (e.until >= range.from) e.summary = null;
    }
  }

  private valid(e: Entry, nowMs: number): WindowSummary | null {
    const s = e.summary;
    if (!s) return null;
    if (nowMs - s.storedAt >= this.ttlMs || nowMs / 1000 >= s.expiresAt) {
      e.summary = null;
      return null;
    }
    return s;
  }

  /** Index of the last entry with since <= t (-1 if none). */
  private indexOf(t: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.since <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  private evictOldest(): void {
    let oldest = 0;
    let oldestAt = Infinity;
    this.entries.forEach((e, i) => {
      const at = e.summary?.storedAt ?? -Infinity;
      if (at < oldestAt) {
        oldestAt = at;
        oldest = i;
      }
    });
    this.entries.splice(oldest, 1);
  }
}

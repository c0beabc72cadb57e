import type pg from 'pg';
import type { Filter } from '../nostr/filter.js';
import { NegentropyRemoteError, reconcileWith, type NegentropyChannel } from './initiator.js';
import { loadRecords, loadWindow, NegentropyVector, type LoadedRecords } from './storage.js';
import type { EventTimeChanges } from './time-changes.js';
import type { WindowSummaries, WindowSummary } from './window-summaries.js';

export interface WindowOutcome {
  since: number;
  until: number;
  records: number;
  /** Settled by the window's fingerprint in one round trip. */
  identical: boolean;
  have: string[];
  need: string[];
  rounds: number;
}

export interface WindowedOptions {
  pool: pg.Pool;
  channel: NegentropyChannel;
  summaries: WindowSummaries;
  changes: EventTimeChanges;
  /** Most of our records in one window (one session's memory on each side). */
  windowRecords: number;
  /** Most records one session may hold at all (a single busy second may exceed windowRecords). */
  maxRecords: number;
  /** Reconcile events from this created_at on (0: everything). */
  since: number;
  subId: () => string;
  frameSizeLimit: number;
  timeoutMs: number;
  openTimeoutMs: number;
  /** Called for each window once its differences are known (fetch and push there, so memory stays per window). */
  onWindow: (outcome: WindowOutcome) => Promise<void>;
}

export interface WindowedResult {
  windows: number;
  identical: number;
  records: number;
  rounds: number;
}

const REMOTE_TOO_MANY = /^blocked: too many records/;

interface Planned {
  since: number;
  until: number;
  summary: WindowSummary;
  /** Records already loaded while planning (null when the summary came from the cache). */
  vector: NegentropyVector | null;
}

/**
 * Reconciles [since, ∞) as consecutive time windows of at most `windowRecords` records each, one NIP-77
 * session per window, so memory on both sides is bounded by the window, not the set. Each session opens with
 * the window's fingerprint alone: an unchanged window (its summary cached, EventTimeChanges keeping the cache
 * honest) costs one round trip and no records loaded. A window the peer refuses as too large (it holds more
 * there than we do) is split in two and each half tried again.
 */
export async function reconcileWindows(o: WindowedOptions): Promise<WindowedResult> {
  await o.changes.poll();
  const result: WindowedResult = { windows: 0, identical: 0, records: 0, rounds: 0 };
  // Start where a known window starts, so its cached summary stays usable (at worst a few more old events compared).
  const cursor = o.since > 0 ? (o.summaries.startOfWindowHolding(o.since) ?? o.since) : 0;
  let next = plan(o, cursor);
  for (;;) {
    const w = await next;
    // The next window is planned (read from PostgreSQL) while the peer answers this one: the two loads overlap.
    if (Number.isFinite(w.until)) {
      next = plan(o, w.until + 1);
      next.catch(() => undefined);
    }
    await settle(o, w, result);
    if (!Number.isFinite(w.until)) return result;
  }
}

async function plan(o: WindowedOptions, since: number): Promise<Planned> {
  const cached = o.summaries.startingAt(since);
  if (cached) return { since, until: cached.until, summary: cached, vector: null };
  const next = o.summaries.nextBoundaryAfter(since);
  const generation = o.changes.generation;
  const loaded = await loadWindow(o.pool, since, next === null ? Infinity : next - 1, o.windowRecords, o.maxRecords);
  return remember(o, since, loaded.until, loaded, generation);
}

/** Summarises loaded records; cached unless a poll since `generation` touched the window (the read may predate it). */
function remember(o: WindowedOptions, since: number, until: number, loaded: LoadedRecords, generation: number): Planned {
  const vector = NegentropyVector.fromRecords(loaded.records);
  const summary: WindowSummary = { since, until, count: vector.size, fingerprint: vector.fingerprint(0, vector.size), expiresAt: loaded.expiresAt, storedAt: Date.now() };
  if (!o.changes.changedSince(generation, since, until)) o.summaries.put(summary);
  return { since, until, summary, vector };
}

/** Splits of one window before giving up (each halves it; 40 covers any range of seconds). */
const MAX_SPLIT_DEPTH = 40;

async function settle(o: WindowedOptions, w: Planned, result: WindowedResult, depth = 0): Promise<void> {
  const load = async (): Promise<NegentropyVector> => {
    return w.vector ?? (w.vector = NegentropyVector.fromRecords((await loadRecords(o.pool, filterOf(w), o.maxRecords)).records));
  };
  try {
    const r = await reconcileWith(o.channel, { count: w.summary.count, fingerprint: w.summary.fingerprint, load }, filterOf(w), {
      subId: o.subId(),
      frameSizeLimit: o.frameSizeLimit,
      timeoutMs: o.timeoutMs,
      openTimeoutMs: o.openTimeoutMs,
    });
    const identical = r.have.length + r.need.length === 0 && r.rounds === 1;
    result.windows++;
    result.rounds += r.rounds;
    result.records += w.summary.count;
    if (identical) result.identical++;
    await o.onWindow({ since: w.since, until: w.until, records: w.summary.count, identical, have: r.have, need: r.need, rounds: r.rounds });
  } catch (err) {
    if (!(err instanceof NegentropyRemoteError && REMOTE_TOO_MANY.test(err.reason))) throw err;
    const halves = depth < MAX_SPLIT_DEPTH ? await split(o, w, await load()) : null;
    if (!halves) throw err;
    for (const half of halves) await settle(o, half, result, depth + 1);
  }
}

/**
 * Two windows covering w, split at our median record, or mid-time when we hold too few there (the peer holds
 * more than we do); null when w is a single second.
 */
async function split(o: WindowedOptions, w: Planned, vector: NegentropyVector): Promise<[Planned, Planned] | null> {
  const last = vector.size > 0 ? vector.timestamp(vector.size - 1) : w.since;
  const end = Number.isFinite(w.until) ? w.until : Math.max(Math.floor(Date.now() / 1000), last);
  let cut: number;
  if (end <= w.since) {
    if (Number.isFinite(w.until)) return null;
    cut = w.since + 1;
  } else {
    const median = vector.size >= 2 ? vector.timestamp(vector.size >>> 1) : w.since;
    cut = median > w.since ? median : w.since + Math.ceil((end - w.since) / 2);
  }
  const generation = o.changes.generation;
  const left = await loadRecords(o.pool, { since: w.since, until: cut - 1 }, o.maxRecords);
  const right = await loadRecords(o.pool, filterOf({ since: cut, until: w.until }), o.maxRecords);
  return [remember(o, w.since, cut - 1, left, generation), remember(o, cut, w.until, right, generation)];
}

function filterOf(w: { since: number; until: number }): Filter {
  return Number.isFinite(w.until) ? { since: w.since, until: w.until } : { since: w.since };
}

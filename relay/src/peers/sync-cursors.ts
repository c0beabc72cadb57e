import type pg from 'pg';
import { normalizeRelayUrl } from './peer-auth.js';

/** Where the REQ catch-up with one peer resumes (unix seconds; null: never completed). */
export interface SyncCursor {
  /** Newest created_at seen from the peer, once a catch-up had filled the gap (and live events after it). */
  pulledUntil: number | null;
  /** Our clock at the start of the last push pass after which the peer held everything we had before it. */
  pushedUntil: number | null;
}

/** Live-tail cursor moves are written at most this often per peer (one event per write would be a write per event). */
const LIVE_FLUSH_MS = 2000;
/** Longest URL kept as a key (configured and learned URLs are validated long before; this is a last bound). */
const MAX_URL = 2048;

/**
 * Per-peer REQ catch-up cursors in PostgreSQL (table peer_sync_cursors, migration 3), so a restart resumes from
 * where the last catch-up ended instead of from nothing. Reads are cached; writes only move a cursor forward
 * (GREATEST in SQL too, so two writers racing cannot move it back).
 */
export class SyncCursorStore {
  private readonly cache = new Map<string, SyncCursor>();
  private readonly pending = new Map<string, { url: string; timer: NodeJS.Timeout }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly onError: (err: unknown, url: string) => void = () => undefined,
  ) {}

  private key(url: string): string {
    return normalizeRelayUrl(url).slice(0, MAX_URL);
  }

  async get(url: string): Promise<SyncCursor> {
    const key = this.key(url);
    const cached = this.cache.get(key);
    if (cached) return { ...cached };
    const { rows } = await this.pool.query<{ pulled_until: string | null; pushed_until: string | null }>(
      'SELECT pulled_until, pushed_until FROM peer_sync_cursors WHERE peer_url = $1',
      [key],
    );
    const row = rows[0];
    const cursor: SyncCursor = {
      pulledUntil: row?.pulled_until == null ? null : Number(row.pulled_until),
      pushedUntil: row?.pushed_until == null ? null : Number(row.pushed_until),
    };
    this.cache.set(key, cursor);
    return { ...cursor };
  }

  /** The cached cursor (no query): null until `get` has read it once. */
  peek(url: string): SyncCursor | null {
    const c = this.cache.get(this.key(url));
    return c ? { ...c } : null;
  }

  /** Moves the cursor forward (a value older than the stored one is ignored) and writes it through. */
  async advance(url: string, next: Partial<SyncCursor>): Promise<SyncCursor> {
    const key = this.key(url);
    const current = await this.get(url);
    const max = (a: number | null, b: number | null | undefined) => (b == null ? a : a === null ? b : Math.max(a, b));
    const merged: SyncCursor = { pulledUntil: max(current.pulledUntil, next.pulledUntil), pushedUntil: max(current.pushedUntil, next.pushedUntil) };
    this.cache.set(key, merged);
    await this.pool.query(
      `INSERT INTO peer_sync_cursors (peer_url, pulled_until, pushed_until) VALUES ($1, $2, $3)
       ON CONFLICT (peer_url) DO UPDATE SET
         pulled_until = GREATEST(peer_sync_cursors.pulled_until, EXCLUDED.pulled_until),
         pushed_until = GREATEST(peer_sync_cursors.pushed_until, EXCLUDED.pushed_until),
         updated_at = now()`,
      [key, merged.pulledUntil, merged.pushedUntil],
    );
    return { ...merged };
  }

  /**
   * Raises the pull cursor after an accepted live event: cached now, written within LIVE_FLUSH_MS (a restart in
   * between re-reads those seconds, which the overlap covers anyway).
   */
  noteLive(url: string, pulledUntil: number): void {
    const key = this.key(url);
    const c = this.cache.get(key);
    if (!c || (c.pulledUntil !== null && pulledUntil <= c.pulledUntil)) return;
    c.pulledUntil = pulledUntil;
    if (this.pending.has(key)) return;
    const timer = setTimeout(() => void this.flushOne(key), LIVE_FLUSH_MS);
    timer.unref();
    this.pending.set(key, { url, timer });
  }

  /** Writes the pending live moves now (on stop, before the pool closes). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending.keys()].map((key) => this.flushOne(key)));
  }

  private async flushOne(key: string): Promise<void> {
    const p = this.pending.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
    const c = this.cache.get(key);
    if (!c) return;
    try {
      await this.advance(p.url, { pulledUntil: c.pulledUntil });
    } catch (err) {
      this.onError(err, p.url);
    }
  }
}

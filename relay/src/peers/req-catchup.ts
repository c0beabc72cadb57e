import type { Logger } from 'pino';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { IngestResult, IngestSource } from '../ingest/source.js';
import { isProtected } from '../nostr/kinds.js';
import type { EventStore } from '../storage/types.js';
import { isRateLimited, type Pacer, sleep } from './pacer.js';
import type { PeerLink } from './peer-link.js';
import type { SyncCursor, SyncCursorStore } from './sync-cursors.js';

/** Pages per direction and run: a bound on one run (at the default page size, 5M events), not a working limit. */
const MAX_PAGES = 10_000;
const HEX64 = /^[0-9a-f]{64}$/;
/** `limit` of the REQ that reads one dense second whole (more than a page holds). */
const DENSE_LIMIT = 5000;

export interface CatchupOptions {
  store: EventStore;
  pipeline: IngestPipeline;
  cursors: SyncCursorStore;
  /** Seconds re-read before a cursor: events that reached the peer late, or with a skewed created_at. */
  overlapSeconds: number;
  pageSize: number;
  /** First contact (no cursor): how far back to start (0: everything). */
  windowSeconds: number;
  /** Bound on every REQ and every OK we wait for. */
  stepTimeoutMs: number;
  logger: Logger;
}

export interface CatchupResult {
  /** REQ pages read from the peer / from our store. */
  pulledPages: number;
  pushedPages: number;
  /** Events the peer sent in the gap, the ones we lacked and stored, ours we offered, and the ones it took. */
  received: number;
  stored: number;
  offered: number;
  pushed: number;
  cursor: SyncCursor;
}

interface Paged {
  id: string;
  createdAt: number;
}

/**
 * Catch-up with a peer that does not speak NIP-77 (nostream and most third-party relays), in plain NIP-01:
 *
 * - pull: `REQ {since: cursor - overlap, until, limit}` pages walking back in time (`until` = the oldest
 *   created_at of the page before; ids of that boundary second are remembered so they are not counted twice),
 *   until a page brings nothing new. Each event we lack goes through the ingest pipeline as the peer's, like a
 *   NIP-77 fetch. Pages run newest first, so the cursor moves only when the whole gap is read: a run cut short
 *   reads it again next time.
 * - push: the same walk over our own store from our push cursor; for each page the peer is asked which ids it
 *   already holds (REQ {ids}), and the rest are sent with EVENT and their OK awaited, paced (NIP-70 protected
 *   events stay here). The cursor moves to the run's start only when every event reached the peer or was refused
 *   for good.
 *
 * Cursors are created_at values: an event that reaches a relay later than `overlapSeconds` after its created_at,
 * while the link is down, is not caught up by this path (NIP-77 has no such blind spot).
 */
export class ReqCatchup {
  private readonly log: Logger;

  constructor(private readonly options: CatchupOptions) {
    this.log = options.logger.child({ component: 'req-catchup' });
  }

  async run(link: PeerLink, source: IngestSource, fetchPacer: Pacer): Promise<CatchupResult> {
    const { cursors, overlapSeconds, windowSeconds } = this.options;
    const startedAt = Math.floor(Date.now() / 1000);
    const cursor = await cursors.get(link.url);
    const from = (c: number | null) => (c !== null ? Math.max(0, c - overlapSeconds) : windowSeconds > 0 ? startedAt - windowSeconds : 0);

    const pull = await this.pull(link, source, fetchPacer, from(cursor.pulledUntil), startedAt);
    const afterPull = await cursors.advance(link.url, { pulledUntil: pull.newest === null ? null : Math.min(pull.newest, startedAt) });
    const push = await this.push(link, from(cursor.pushedUntil), startedAt);
    const final = push.complete ? await cursors.advance(link.url, { pushedUntil: startedAt }) : afterPull;
    return { pulledPages: pull.pages, pushedPages: push.pages, received: pull.received, stored: pull.stored, offered: push.offered, pushed: push.pushed, cursor: final };
  }

  /**
   * Walks [since, until] newest first in pages. `page(since, until, limit)` returns the events of one REQ;
   * `handle` gets the ones not seen before. Ends on an empty page; throws past MAX_PAGES.
   *
   * NIP-01 can only page by `until`, whose unit is a second: when a page holds nothing but its newest second,
   * that second has more events than a page, so it is read alone (since = until = that second) with the large
   * DENSE_LIMIT before the walk moves below it. A peer clamping `limit` under what one second holds hides the
   * rest of that second from this path (logged).
   */
  private async walk<T extends Paged>(peer: string, since: number, until: number, page: (since: number, until: number, limit: number) => Promise<T[]>, handle: (fresh: T[]) => Promise<void>): Promise<number> {
    const { pageSize } = this.options;
    let boundary = new Set<string>();
    let pages = 0;
    const read = async (from: number, to: number, limit: number) => {
      if (++pages > MAX_PAGES) throw new Error(`catch-up needed more than ${MAX_PAGES} pages`);
      // Hostile or sloppy peers: whatever lies outside the window we asked for does not steer the walk.
      return (await page(from, to, limit)).filter((e) => e.createdAt >= from && e.createdAt <= to);
    };
    for (;;) {
      const items = await read(since, until, pageSize);
      if (items.length === 0) return pages;
      const fresh = items.filter((e) => !boundary.has(e.id));
      if (fresh.length > 0) await handle(fresh);
      const oldest = Math.min(...items.map((e) => e.createdAt));
      if (oldest < until) {
        boundary = new Set(items.filter((e) => e.createdAt === oldest).map((e) => e.id));
        until = oldest;
        continue;
      }
      // Only second `until` on this page: read it whole, then go below it.
      const seen = new Set([...boundary, ...items.map((e) => e.id)]);
      const second = await read(until, until, DENSE_LIMIT);
      const rest = second.filter((e) => !seen.has(e.id));
      if (rest.length > 0) await handle(rest);
      // A full page of this second and no more from the whole-second read: the peer may clamp `limit` that low.
      if (second.length >= DENSE_LIMIT || (items.length >= pageSize && second.length <= items.length)) {
        this.log.warn({ peer, second: until, read: second.length }, 'one second may hold more events than the peer serves in one REQ; some of it may be missed');
      }
      if (until <= since) return pages;
      until -= 1;
      boundary = new Set();
    }
  }

  private async pull(link: PeerLink, source: IngestSource, pacer: Pacer, since: number, until: number) {
    const { store, stepTimeoutMs } = this.options;
    let received = 0;
    let stored = 0;
    let newest: number | null = null;
    const seen = (createdAt: number) => (newest = newest === null ? createdAt : Math.max(newest, createdAt));
    const pages = await this.walk(
      link.url,
      since,
      until,
      async (from, to, limit) => {
        // A peer ignoring `limit` is cut off at twice it (the query rejects), not buffered without end.
        const events = await link.query([{ since: from, until: to, limit }], stepTimeoutMs, limit * 2);
        return events.flatMap((e) => {
          const ev = e as { id?: unknown; created_at?: unknown } | null;
          return ev && typeof ev.id === 'string' && HEX64.test(ev.id) && Number.isSafeInteger(ev.created_at) ? [{ id: ev.id, createdAt: ev.created_at as number, event: e }] : [];
        });
      },
      async (fresh) => {
        received += fresh.length;
        const states = await store.lookup(fresh.map((f) => f.id));
        const lacking = fresh.filter((f) => !states.has(f.id));
        // Only what we hold or just accepted moves the cursor: an event that fails our checks proves nothing.
        for (const f of fresh) if (states.get(f.id) === 'stored') seen(f.createdAt);
        // Paced to our own limit for this peer, so what we asked for is not refused by our own rate limiter.
        await pacer.take(lacking.length);
        const results = await Promise.all(lacking.map((f) => this.submitRetrying(f.event, source)));
        results.forEach((r, i) => {
          if (r.ok) seen(lacking[i]!.createdAt);
          if (r.ok && r.message === '') stored++;
        });
      },
    );
    return { pages, received, stored, newest };
  }

  private async push(link: PeerLink, since: number, until: number) {
    const { store, stepTimeoutMs } = this.options;
    let offered = 0;
    let pushed = 0;
    let complete = true;
    const pages = await this.walk(
      link.url,
      since,
      until,
      async (from, to, limit) => (await store.query([{ since: from, until: to, limit }])).map((item) => ({ id: item.event.id, createdAt: item.event.created_at, item })),
      async (fresh) => {
        const candidates = fresh.filter((f) => !isProtected(f.item.event));
        if (candidates.length === 0) return;
        const held = new Set(
          (await link.query([{ ids: candidates.map((c) => c.id), limit: candidates.length }], stepTimeoutMs, candidates.length * 2)).flatMap((e) => {
            const id = (e as { id?: unknown } | null)?.id;
            return typeof id === 'string' ? [id] : [];
          }),
        );
        const missing = candidates.filter((c) => !held.has(c.id));
        offered += missing.length;
        const results = await Promise.all(missing.map((m) => link.pushPaced(m.item.raw, m.id, 1, stepTimeoutMs)));
        if (!link.isUp) throw new Error('link went down during the push');
        for (const r of results) {
          if (r.ok) pushed++;
          // `error:` (no OK in time, link trouble, its database) may pass; `blocked:`/`invalid:`/... will not.
          else if (r.message.startsWith('error:') || isRateLimited(r.message)) complete = false;
        }
        const refused = results.find((r) => !r.ok);
        if (refused) this.log.debug({ peer: link.url, message: refused.message.slice(0, 200) }, 'peer refused a pushed event');
      },
    );
    return { pages, offered, pushed, complete };
  }

  /** A fetched event refused by our own rate limit (live traffic shares the budget) is submitted again after a pause. */
  private async submitRetrying(event: unknown, source: IngestSource): Promise<IngestResult> {
    let result = await this.options.pipeline.submit(event, source);
    for (let attempt = 1; attempt <= 8 && isRateLimited(result.message); attempt++) {
      await sleep(1000 * attempt);
      result = await this.options.pipeline.submit(event, source);
    }
    return result;
  }
}

import type { EventCache, StoredEvent } from '../storage/types.js';

/** Ids or events gathered before a batch is sent at once, so one burst cannot build one huge command. */
const MAX_BATCH = 1000;

/**
 * Coalesces the pipeline's per-event cache calls (dedup lookup, dedup mark, recent-events cache) into one call
 * per event-loop turn: Redis then runs one command per batch instead of three per event, which cost a third of
 * ingest (docs/PERFORMANCE.md). A lone event waits one turn. Errors reach every caller of the batch, as before.
 */
export class CacheBatcher {
  private lookups: Array<{ id: string; resolve: (seen: boolean) => void; reject: (err: unknown) => void }> = [];
  private writes: Array<{ item: StoredEvent; mark: boolean }> = [];

  constructor(private readonly cache: EventCache, private readonly onWriteError: (err: unknown) => void) {}

  /** Whether a dedup mark says `id` is stored. */
  seen(id: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.lookups.push({ id, resolve, reject });
      if (this.lookups.length === 1) setImmediate(() => this.flushLookups());
      else if (this.lookups.length >= MAX_BATCH) this.flushLookups();
    });
  }

  /** Caches a stored event, with a dedup mark when `mark`; failures go to onWriteError (the event is stored). */
  remember(item: StoredEvent, mark: boolean): void {
    this.writes.push({ item, mark });
    if (this.writes.length === 1) setImmediate(() => this.flushWrites());
    else if (this.writes.length >= MAX_BATCH) this.flushWrites();
  }

  private flushLookups(): void {
    const batch = this.lookups;
    if (batch.length === 0) return;
    this.lookups = [];
    this.cache.seen(batch.map((b) => b.id)).then(
      (seen) => {
        for (const b of batch) b.resolve(seen.has(b.id));
      },
      (err: unknown) => {
        for (const b of batch) b.reject(err);
      },
    );
  }

  private flushWrites(): void {
    const batch = this.writes;
    if (batch.length === 0) return;
    this.writes = [];
    const marks = batch.filter((w) => w.mark).map((w) => w.item.event.id);
    Promise.all([this.cache.markSeen(marks), this.cache.remember(batch.map((w) => w.item))]).catch(this.onWriteError);
  }
}

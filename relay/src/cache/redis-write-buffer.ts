import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { NostrEvent } from '../nostr/event.js';
import type { StoredEvent } from '../storage/types.js';

interface Waiting {
  raw: string;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The runbook's Redis write buffer: a list (`<prefix>write-buffer`) holding a second copy of every event accepted
 * while PostgreSQL is down, so an event survives the loss of this relay's disk. Pushes made in one tick share one
 * RPUSH. The local journal stays the authority for replay order; the buffer is read at the end of a replay for
 * events the journal does not have.
 */
export class RedisWriteBuffer {
  readonly key: string;
  private queued: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly redis: Redis, prefix: string, private readonly log: Logger) {
    this.key = `${prefix}write-buffer`;
  }

  push(item: StoredEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ raw: item.raw, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.flush();
      });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    try {
      await this.redis.rpush(this.key, ...batch.map((w) => w.raw));
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    for (const w of batch) w.resolve();
  }

  async length(): Promise<number> {
    return this.redis.llen(this.key);
  }

  /** Everything buffered, oldest first, with the count read (for `trim`). */
  async readAll(): Promise<{ items: StoredEvent[]; count: number }> {
    const raws = await this.redis.lrange(this.key, 0, -1);
    const items: StoredEvent[] = [];
    for (const raw of raws) {
      try {
        items.push({ event: JSON.parse(raw) as NostrEvent, raw });
      } catch (err) {
        this.log.error({ err, key: this.key }, 'write buffer: unreadable entry skipped');
      }
    }
    return { items, count: raws.length };
  }

  /** Drops the first `count` entries (those a replay just committed); later pushes stay. */
  async trim(count: number): Promise<void> {
    if (count <= 0) return;
    await this.redis.ltrim(this.key, count, -1);
  }
}

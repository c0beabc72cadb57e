import type { Redis } from 'ioredis';
import type { StoredEvent } from '../storage/types.js';

/** One buffered value: its text, or only its length when it was too long to read. */
export type BufferEntry = { raw: string } | { oversized: number };

/** LRANGE 0 max-1, with values longer than ARGV[2] replaced by {length} so they never cross the wire. */
const PAGE_LUA = `
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local limit = tonumber(ARGV[2])
for i = 1, #items do
  if #items[i] > limit then items[i] = { #items[i] } end
end
return items
`;

interface Waiting {
  raw: string;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The runbook's Redis write buffer: a list (`<prefix>write-buffer`) holding a second copy of every event accepted
 * while PostgreSQL is down, so an event survives the loss of this relay's disk. Pushes made in one tick share one
 * RPUSH. The local journal stays the authority for replay order; the buffer is read, a page at a time, at the end
 * of a replay for events the journal does not have.
 */
export class RedisWriteBuffer {
  readonly key: string;
  private queued: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly redis: Redis, prefix: string) {
    this.key = `${prefix}write-buffer`;
    if (!(redis as unknown as Record<string, unknown>).nostrBufferPage) redis.defineCommand('nostrBufferPage', { numberOfKeys: 1, lua: PAGE_LUA });
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

  /**
   * The oldest `max` entries, as Redis holds them: nothing here is trusted (the caller validates each one like a
   * client's event). Entries longer than `maxBytes` come back as an OVERSIZED marker with their length instead of
   * their bytes, so a poisoned list cannot make the relay allocate hundreds of megabytes.
   */
  async readPage(max: number, maxBytes: number): Promise<BufferEntry[]> {
    const raws = (await (this.redis as unknown as { nostrBufferPage(key: string, max: number, maxBytes: number): Promise<unknown[]> }).nostrBufferPage(
      this.key, max, maxBytes,
    )) ?? [];
    return raws.map((raw) => {
      if (Array.isArray(raw)) return { oversized: Number(raw[0]) };
      return { raw: typeof raw === 'string' ? raw : String(raw) };
    });
  }

  /** Drops the first `count` entries (those a replay just committed); later pushes stay. */
  async trim(count: number): Promise<void> {
    if (count <= 0) return;
    await this.redis.ltrim(this.key, count, -1);
  }
}

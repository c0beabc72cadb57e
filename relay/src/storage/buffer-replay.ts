import { checkEntry, verifyEntries, type RedisQuarantine } from '../cache/entry-check.js';
import type { BufferEntry, RedisWriteBuffer } from '../cache/redis-write-buffer.js';
import type { SignatureVerifier } from '../crypto/types.js';
import type { StoredEvent } from './types.js';

export interface BufferReplayOptions {
  buffer: RedisWriteBuffer;
  verifier: SignatureVerifier;
  quarantine: RedisQuarantine;
  /** Entries read per page. */
  pageSize: number;
  /** Longest entry read back; longer ones are quarantined unread. */
  maxEntryBytes: number;
}

/**
 * Reads the Redis write buffer back for replay, a page at a time. Redis is not trusted: every entry is checked like a
 * client's event (size, JSON, shape, id, signature) and a bad one is quarantined instead of replayed, so a poisoned
 * buffer can neither crash the relay nor reach PostgreSQL. Each page is trimmed once its good entries are replayed.
 */
export class BufferReplay {
  constructor(private readonly o: BufferReplayOptions) {}

  /** Hands each page's valid entries that `known` does not already hold (one copy per id) to `replay`, then trims the page. */
  async drain(known: (id: string) => boolean, replay: (items: StoredEvent[]) => Promise<void>): Promise<void> {
    const { buffer, pageSize } = this.o;
    const seen = new Set<string>();
    for (;;) {
      const page = await buffer.readPage(pageSize, this.o.maxEntryBytes);
      if (page.length === 0) return;
      const good = await this.check(page);
      const missing = good.filter((i) => !known(i.event.id) && !seen.has(i.event.id) && seen.add(i.event.id));
      if (missing.length > 0) await replay(missing);
      await buffer.trim(page.length);
      if (page.length < pageSize) return;
    }
  }

  /** The entries of a page that pass every check; the others are quarantined. */
  private async check(page: BufferEntry[]): Promise<StoredEvent[]> {
    const { quarantine, maxEntryBytes } = this.o;
    const shaped: StoredEvent[] = [];
    for (const entry of page) {
      if ('oversized' in entry) {
        quarantine.note('write-buffer', 'size', `${entry.oversized} bytes (limit ${maxEntryBytes})`, '');
        continue;
      }
      const result = checkEntry(entry.raw, maxEntryBytes);
      if (result.ok) shaped.push(result.item);
      else quarantine.note('write-buffer', result.reason, result.detail, entry.raw);
    }
    const sigs = await verifyEntries(this.o.verifier, shaped);
    return shaped.filter((item, i) => {
      if (sigs[i]) return true;
      quarantine.note('write-buffer', 'signature', 'signature verification failed', item.raw, { id: item.event.id });
      return false;
    });
  }
}

import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import { computeEventId, type NostrEvent } from '../nostr/event.js';
import { StorageError, type StoredEvent } from './types.js';

/**
 * Record layout: u32 LE payload length, u32 LE CRC32 of the payload, payload (the event's JSON, UTF-8).
 * A record is valid only if all of it is there and the checksum matches, so a torn write is detected on open.
 */
const HEADER_BYTES = 8;
/** Larger than any event the relay accepts (maxMessageLength); a bigger length field means a corrupt header. */
const MAX_RECORD_BYTES = 16 * 1024 * 1024;
export const JOURNAL_FILE = 'journal.log';

export interface JournalEntry {
  id: string;
  event: NostrEvent;
  raw: string;
  bytes: number;
}

export interface JournalOptions {
  dir: string;
  /** Appends that would grow the file past this are refused (`journal-full`). */
  maxBytes: number;
  logger: Logger;
  /** Called with a reason for every refused append or discarded record (metrics). */
  onError?: (code: string) => void;
}

export interface RecoveryReport {
  records: number;
  bytes: number;
  /** Bytes cut off at the first torn or corrupt record (0 if the file was clean). */
  discardedBytes: number;
  corruptAt?: number;
  reason?: string;
}

interface Waiting {
  entry: JournalEntry;
  record: Buffer;
  resolve(): void;
  reject(err: unknown): void;
}

export function encodeRecord(raw: string): Buffer {
  const payload = Buffer.from(raw, 'utf8');
  const record = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  record.writeUInt32LE(crc32(payload), 4);
  payload.copy(record, HEADER_BYTES);
  return record;
}

/**
 * Local append-only journal of events accepted while PostgreSQL could not take them. Appends are group-committed:
 * everything queued in one tick goes out in one write and one fdatasync, and each append resolves only after that
 * sync. Entries stay in memory (in order) until replay marks them done; the file is truncated once all are.
 */
export class Journal {
  readonly path: string;
  private fh: FileHandle | null = null;
  private entries: JournalEntry[] = [];
  /** Entries [0, replayed) are committed to PostgreSQL; the rest are waiting for replay. */
  private replayed = 0;
  private readonly ids = new Set<string>();
  private size = 0;
  private queued: Waiting[] = [];
  private queuedBytes = 0;
  /** Appends taken from `queued` whose write and sync have not finished yet. */
  private writing = 0;
  private readonly queuedIds = new Set<string>();
  private flushScheduled = false;
  /** File operations (group writes, truncation) run one at a time, in order. */
  private ops: Promise<void> = Promise.resolve();
  private closed = false;
  /** Set when a failed write could not be cut back: the file may end in a torn record, so nothing more is appended. */
  private failure: { reason: string; since: string } | null = null;
  private readonly log: Logger;

  constructor(private readonly options: JournalOptions) {
    this.path = join(options.dir, JOURNAL_FILE);
    this.log = options.logger;
  }

  get bytes(): number {
    return this.size;
  }

  get maxBytes(): number {
    return this.options.maxBytes;
  }

  /**
   * `failed-closed` after a failed write whose partial bytes could not be cut back off the file: a record appended
   * after them would sit behind a torn record, and the next start discards a torn record and everything after it, so
   * acknowledging it would be a lie. Appends are refused (`journal-failed`) until the journal is emptied by a replay
   * or the relay restarts (which cuts the torn tail off).
   */
  get state(): { state: 'ok' | 'failed-closed'; reason?: string; since?: string } {
    return this.failure ? { state: 'failed-closed', ...this.failure } : { state: 'ok' };
  }

  /** Events waiting for replay (durable ones plus appends still being synced). */
  get pendingCount(): number {
    return this.entries.length - this.replayed + this.queued.length + this.writing;
  }

  /** True while appends are waiting for, or in, their group write. */
  get busy(): boolean {
    return this.queued.length > 0 || this.writing > 0;
  }

  /** Whether this id is in the journal (replayed or not, until truncation) or being appended. */
  has(id: string): boolean {
    return this.ids.has(id) || this.queuedIds.has(id);
  }

  /** Opens (creating) the file and recovers what it holds: valid records become pending entries, a torn tail is cut off. */
  async open(): Promise<RecoveryReport> {
    await mkdir(this.options.dir, { recursive: true });
    this.fh = await open(this.path, 'a+');
    const stat = await this.fh.stat();
    // A character device (e.g. /dev/full in tests) reports size 0: nothing to recover, and reading it never ends.
    const length = stat.isFile() ? stat.size : 0;
    const data = Buffer.alloc(length);
    if (length > 0) await this.fh.read(data, 0, length, 0);
    const report = this.scan(data);
    if (report.discardedBytes > 0) {
      this.options.onError?.('corrupt-record');
      this.log.error(
        { path: this.path, offset: report.corruptAt, discardedBytes: report.discardedBytes, reason: report.reason, recovered: report.records },
        'journal: discarded a torn or corrupt record and everything after it',
      );
      await this.fh.truncate(report.bytes);
      await this.fh.datasync();
    }
    this.size = report.bytes;
    if (report.records > 0) this.log.warn({ path: this.path, events: report.records, bytes: report.bytes }, 'journal: events from a previous run are waiting for replay');
    return report;
  }

  private scan(data: Buffer): RecoveryReport {
    let offset = 0;
    const fail = (reason: string): RecoveryReport => ({ records: this.entries.length, bytes: offset, discardedBytes: data.length - offset, corruptAt: offset, reason });
    while (offset < data.length) {
      if (data.length - offset < HEADER_BYTES) return fail('truncated header');
      const length = data.readUInt32LE(offset);
      const sum = data.readUInt32LE(offset + 4);
      if (length === 0 || length > MAX_RECORD_BYTES) return fail(`implausible record length ${length}`);
      if (data.length - offset - HEADER_BYTES < length) return fail('truncated payload');
      const payload = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
      if (crc32(payload) !== sum) return fail('checksum mismatch');
      let event: NostrEvent;
      const raw = payload.toString('utf8');
      try {
        event = JSON.parse(raw) as NostrEvent;
      } catch {
        return fail('payload is not JSON');
      }
      // A record with a valid checksum but the wrong id can only come from a bug; refuse to replay it.
      if (typeof event?.id !== 'string' || computeEventId(event) !== event.id) return fail('event id does not match its content');
      const bytes = HEADER_BYTES + length;
      this.entries.push({ id: event.id, event, raw, bytes });
      this.ids.add(event.id);
      offset += bytes;
    }
    return { records: this.entries.length, bytes: offset, discardedBytes: 0 };
  }

  /**
   * Appends one event; resolves once it is on disk (fdatasync). Refuses with StorageError `journal-full` past the
   * size cap and `disk-full` on ENOSPC; the caller must not acknowledge the event then.
   */
  append(item: StoredEvent): Promise<void> {
    if (this.closed || !this.fh) return Promise.reject(new StorageError('journal is not open', 'closed'));
    if (this.failure) {
      this.options.onError?.('journal-failed');
      return Promise.reject(new StorageError(`journal failed closed (${this.failure.reason}); refusing appends`, 'journal-failed'));
    }
    const record = encodeRecord(item.raw);
    if (this.size + this.queuedBytes + record.length > this.options.maxBytes) {
      this.options.onError?.('journal-full');
      return Promise.reject(
        new StorageError(`journal is full (${this.size + this.queuedBytes} of ${this.options.maxBytes} bytes)`, 'journal-full'),
      );
    }
    const entry: JournalEntry = { id: item.event.id, event: item.event, raw: item.raw, bytes: record.length };
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ entry, record, resolve, reject });
      this.queuedBytes += record.length;
      this.queuedIds.add(entry.id);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Let the rest of this tick's appends share the write and the sync.
        setImmediate(() => {
          this.flushScheduled = false;
          this.enqueue(() => this.writeQueued());
        });
      }
    });
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.ops.then(op);
    // The chain must survive a failed op; each op reports its own failure to its callers.
    this.ops = next.catch(() => undefined);
    return next;
  }

  private async writeQueued(): Promise<void> {
    const batch = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    if (batch.length === 0) return;
    this.writing = batch.length;
    try {
      await this.writeBatch(batch);
    } finally {
      this.writing = 0;
    }
  }

  private async writeBatch(batch: Waiting[]): Promise<void> {
    const buf = Buffer.concat(batch.map((w) => w.record));
    const fh = this.fh!;
    let written = 0;
    try {
      while (written < buf.length) {
        const { bytesWritten } = await fh.write(buf, written, buf.length - written);
        written += bytesWritten;
      }
      await fh.datasync();
    } catch (err) {
      for (const w of batch) this.queuedIds.delete(w.entry.id);
      const code = (err as NodeJS.ErrnoException).code;
      const mapped = code === 'ENOSPC' || code === 'EDQUOT' ? 'disk-full' : 'journal-io';
      this.options.onError?.(mapped);
      this.log.error({ err, code, events: batch.length, path: this.path }, mapped === 'disk-full' ? 'journal: disk full; events refused' : 'journal: write failed; events refused');
      // Nothing reached the file if the first write failed outright (a full disk usually); otherwise cut it back.
      if (written > 0 || mapped === 'journal-io') await this.cutBackTo(this.size, written > 0);
      const failure = new StorageError(`journal write failed: ${(err as Error).message}`, mapped, { cause: err });
      for (const w of batch) w.reject(failure);
      return;
    }
    this.size += buf.length;
    for (const w of batch) {
      this.queuedIds.delete(w.entry.id);
      this.entries.push(w.entry);
      this.ids.add(w.entry.id);
      w.resolve();
    }
  }

  /**
   * After a failed write, drops whatever part of it reached the file so the next append does not follow a torn
   * record. If that fails while bytes of the failed write may be in the file (`mustCut`), the journal fails closed.
   */
  private async cutBackTo(size: number, mustCut: boolean): Promise<void> {
    try {
      await this.fh!.truncate(size);
      await this.fh!.datasync();
      return;
    } catch (err) {
      if (!mustCut) {
        // Not a regular file (a device in tests), and nothing was written: there is no torn tail to fear.
        this.log.warn({ err, path: this.path }, 'journal: could not cut back a failed write');
        return;
      }
      this.failure = { reason: `could not cut back a failed write: ${(err as Error).message}`, since: new Date().toISOString() };
      this.options.onError?.('failed-closed');
      this.log.error(
        { err, path: this.path, validBytes: size, pending: this.pendingCount },
        'journal: failed closed: a failed write could not be cut back; refusing appends until the journal is replayed or the relay restarts',
      );
    }
  }

  /** The next `max` entries waiting for replay, oldest first (they stay pending until markReplayed). */
  nextBatch(max: number): JournalEntry[] {
    return this.entries.slice(this.replayed, this.replayed + max);
  }

  /** All entries not yet replayed, oldest first. */
  pending(): JournalEntry[] {
    return this.entries.slice(this.replayed);
  }

  /** The first `count` pending entries are committed to PostgreSQL. */
  markReplayed(count: number): void {
    this.replayed = Math.min(this.entries.length, this.replayed + count);
  }

  /** Nothing pending and nothing being appended. */
  get drained(): boolean {
    return this.replayed === this.entries.length && !this.busy;
  }

  /**
   * Empties the file once everything in it is replayed. Runs in order with the writes, and re-checks when its turn
   * comes, so an append that slipped in keeps the journal. A crash before this point only means a second,
   * idempotent replay.
   */
  truncateIfDrained(): Promise<boolean> {
    return this.enqueue(async () => {
      if (!this.drained || (this.size === 0 && !this.failure)) return;
      await this.fh!.truncate(0);
      await this.fh!.datasync();
      if (this.failure) {
        // The torn tail went with everything else: appends are safe again.
        this.log.warn({ path: this.path }, 'journal: emptied after replay; accepting appends again');
        this.failure = null;
      }
      this.entries = [];
      this.replayed = 0;
      this.ids.clear();
      this.size = 0;
    }).then(() => this.size === 0);
  }

  /** Waits for queued appends to be written. */
  async settle(): Promise<void> {
    while (this.busy || this.flushScheduled) {
      await new Promise((r) => setImmediate(r));
      await this.ops;
    }
    await this.ops;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.settle();
    this.closed = true;
    await this.fh?.close();
    this.fh = null;
  }
}

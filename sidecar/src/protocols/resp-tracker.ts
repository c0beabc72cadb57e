/**
 * Per-connection RESP bookkeeping for tcp links, so an injected Redis reply
 * (redis_error) answers the command it replaces, in order:
 *
 *   commands that reached the server ── sent ──┐
 *   replies read from the server ───── replied ┴─▶ an injected reply waits until `replied` reaches
 *                                                 the `sent` it was queued at, then enters the
 *                                                 downstream pipe right after that reply
 *
 * Injected replies enter the downstream pipe where the server's reply would
 * have, so downstream faults (latency, partition) act on them as on real ones.
 * The tracker runs from the first byte of every tcp connection and switches
 * itself off for a stream that is not RESP (PostgreSQL, an echo of binary
 * data): then an injected reply is written at once, as before. In RESP2
 * pub/sub mode pushed messages look like replies; the count is clamped, so
 * order there is best effort.
 */
import { RespError, RespScanner } from './resp.js';

/** Most injected replies waiting for the server's replies ahead of them on one connection. */
export const MAX_QUEUED_INJECTIONS = 10_000;

const FIRST_COMMAND_BYTE = /^[*A-Za-z]$/;

export class RespTracker {
  private commands: RespScanner | null = new RespScanner('request');
  private replies: RespScanner | null = new RespScanner('reply');
  private sent = 0;
  private replied = 0;
  private queue: Array<{ after: number; data: Buffer }> = [];
  private seenCommand = false;

  constructor(
    /** Push bytes into the downstream pipe (its source side). */
    private readonly push: (data: Buffer) => void,
    /** Too many injections queued: the caller closes the connection. */
    private readonly overflow: (why: string) => void,
  ) {}

  get enabled(): boolean {
    return this.commands !== null && this.replies !== null;
  }

  private disable(): void {
    this.commands = null;
    this.replies = null;
    // Nothing can be placed any more: what waited goes out now, in order.
    const q = this.queue;
    this.queue = [];
    for (const item of q) this.push(item.data);
  }

  /** Bytes that reached the server (the upstream pipe's sink). */
  observeCommands(data: Buffer): void {
    if (!this.commands || data.length === 0) return;
    if (!this.seenCommand) {
      this.seenCommand = true;
      if (!FIRST_COMMAND_BYTE.test(String.fromCharCode(data[0]!))) return this.disable();
    }
    try {
      this.commands.feed(data, (_end, counts) => {
        if (counts) this.sent++;
      });
    } catch (err) {
      if (!(err instanceof RespError)) throw err;
      this.disable();
    }
  }

  /** Bytes read from the server: pushed downstream, split where queued injected replies belong. */
  fromServer(data: Buffer): void {
    if (!this.replies) return this.push(data);
    let start = 0;
    try {
      this.replies.feed(data, (end, counts) => {
        if (!counts) return;
        if (this.replied < this.sent) this.replied++;
        while (this.queue.length > 0 && this.queue[0]!.after <= this.replied) {
          if (end > start) this.push(data.subarray(start, end));
          start = end;
          this.push(this.queue.shift()!.data);
        }
      });
    } catch (err) {
      if (!(err instanceof RespError)) throw err;
      if (start < data.length) this.push(data.subarray(start));
      start = data.length;
      this.disable();
    }
    if (start < data.length) this.push(start === 0 ? data : data.subarray(start));
  }

  /** The request scanner's state where the server's stream is now (null when not tracking). */
  commandScanner(): RespScanner | null {
    return this.commands?.clone() ?? null;
  }

  /** Answer a command that was not forwarded: after the replies of every command that was. */
  inject(data: Buffer): void {
    if (!this.enabled || (this.queue.length === 0 && this.replied >= this.sent)) return this.push(data);
    if (this.queue.length >= MAX_QUEUED_INJECTIONS) {
      this.overflow(`more than ${MAX_QUEUED_INJECTIONS} injected replies waiting for the server's replies`);
      return;
    }
    this.queue.push({ after: this.sent, data });
  }

  clear(): void {
    this.queue = [];
  }
}

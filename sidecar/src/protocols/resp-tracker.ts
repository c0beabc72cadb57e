/**
 * Per-connection RESP bookkeeping for tcp links, so an injected Redis reply
 * (redis_error) answers the command it replaces, in order:
 *
 *   commands that reached the server ── sent ──┐
 *   replies read from the server ───── replied ┴─▶ an injected reply waits until `replied` reaches
 *                                                 the `sent` it was queued at, then enters the
 *                                                 downstream pipe right after that reply
 *
 * A tracker exists only while a connection has a redis_error stage (or
 * injected replies still waiting): the fast path parses nothing. It starts in
 * one of two ways:
 *   - exact: on a connection that has moved no byte yet (accepted while the
 *     fault is active), both scanners start at byte 0;
 *   - synced: mid-stream, it knows neither stream's position. The redis_error
 *     stage finds a command boundary and sends a SyncMarker there; the request
 *     side starts counting right after the marker command, the reply side right
 *     after the marker's reply (cut out of the stream). Replies before it pass
 *     untouched; injected replies queued meanwhile wait for it.
 * The tracker switches itself off for a stream that is not RESP (PostgreSQL,
 * binary data): then an injected reply is written at once. At most
 * MAX_QUEUED_INJECTIONS wait on one connection.
 */
import { RespError, RespScanner } from './resp.js';
import { SyncMarker } from './resp-marker.js';

/** Most injected replies waiting for the server's replies ahead of them on one connection. */
export const MAX_QUEUED_INJECTIONS = 10_000;
/** Server bytes scanned for the marker's reply before giving up (the stream is not what we think). */
const MAX_SYNC_SCAN = 64 * 1024 * 1024;

const FIRST_COMMAND_BYTE = /^[*A-Za-z]$/;

export class RespTracker {
  private commands: RespScanner | null = new RespScanner('request');
  private replies: RespScanner | null = new RespScanner('reply');
  private sent = 0;
  private replied = 0;
  private queue: Array<{ after: number; data: Buffer }> = [];
  private seenCommand = false;
  /** Set while synchronising mid-stream (see the file comment). */
  readonly marker: SyncMarker | null;
  private requestSynced: boolean;
  private replySynced: boolean;
  private requestCarry: Buffer | null = null;
  private replyHeld: Buffer | null = null;
  private syncScanned = 0;
  /** The redis_error stage has passed the marker on towards the server (it may still sit in a later stage). */
  markerSent = false;

  constructor(
    /** Push bytes into the downstream pipe (its source side). */
    private readonly push: (data: Buffer) => void,
    /** Too many injections queued: the caller closes the connection. */
    private readonly overflow: (why: string) => void,
    midStream: boolean,
  ) {
    this.marker = midStream ? new SyncMarker() : null;
    this.requestSynced = !midStream;
    this.replySynced = !midStream;
    if (midStream) this.seenCommand = true; // the first bytes it parses come after its own marker
  }

  get enabled(): boolean {
    return this.commands !== null && this.replies !== null;
  }

  /** Nothing waits and nothing is being synchronised: the connection can go back to the fast path. */
  get idle(): boolean {
    return this.queue.length === 0 && (!this.enabled || (this.replySynced && this.replyHeld === null && this.replied >= this.sent));
  }

  private disable(): void {
    this.commands = null;
    this.replies = null;
    // Nothing can be placed any more: what waited goes out now, in order.
    const held = this.replyHeld;
    this.replyHeld = null;
    if (held) this.push(held);
    const q = this.queue;
    this.queue = [];
    for (const item of q) this.push(item.data);
  }

  /** Bytes that reached the server (the upstream pipe's sink). */
  observeCommands(data: Buffer): void {
    if (!this.commands || data.length === 0) return;
    if (!this.requestSynced) {
      // Count only what follows the marker command; the bytes before it answer commands sent before it.
      const m = this.marker!;
      const buf = this.requestCarry ? Buffer.concat([this.requestCarry, data]) : data;
      const end = m.findCommandEnd(buf);
      if (end < 0) {
        this.requestCarry = Buffer.from(buf.subarray(Math.max(0, buf.length - (m.commandLength - 1))));
        return;
      }
      this.requestSynced = true;
      this.requestCarry = null;
      data = buf.subarray(end);
      if (data.length === 0) return;
    }
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
    if (!this.replySynced) {
      const rest = this.syncReplies(data);
      if (rest === null || rest.length === 0) return;
      data = rest;
    }
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

  /** Before the marker's reply: pass replies on, cut the marker's out; returns what follows it (null: not yet). */
  private syncReplies(data: Buffer): Buffer | null {
    const m = this.marker!;
    const buf = this.replyHeld ? Buffer.concat([this.replyHeld, data]) : data;
    this.replyHeld = null;
    const found = m.findReply(buf);
    if (!found) {
      this.syncScanned += data.length;
      if (this.syncScanned > MAX_SYNC_SCAN) {
        // The marker never came back (a MULTI opened before the fault queues it, a server that refuses it):
        // stop tracking rather than hold the replies forever; waiting errors go out now.
        this.push(buf);
        this.disable();
        return null;
      }
      const hold = m.holdLength(buf);
      if (buf.length > hold) this.push(buf.subarray(0, buf.length - hold));
      if (hold > 0) this.replyHeld = Buffer.from(buf.subarray(buf.length - hold));
      return null;
    }
    const [start, end] = found;
    if (start > 0) this.push(buf.subarray(0, start));
    this.replySynced = true;
    // The marker's place: errors queued for commands answered before anything else was forwarded go here.
    while (this.queue.length > 0 && this.queue[0]!.after <= this.replied) this.push(this.queue.shift()!.data);
    return buf.subarray(end);
  }

  /** The request scanner's state where the server's stream is now (null when not tracking exactly there). */
  commandScanner(): RespScanner | null {
    if (!this.requestSynced) return null;
    return this.commands?.clone() ?? null;
  }

  /** Answer a command that was not forwarded: after the replies of every command that was. */
  inject(data: Buffer): void {
    if (!this.enabled || (this.replySynced && this.queue.length === 0 && this.replied >= this.sent)) return this.push(data);
    if (this.queue.length >= MAX_QUEUED_INJECTIONS) {
      this.overflow(`more than ${MAX_QUEUED_INJECTIONS} injected replies waiting for the server's replies`);
      return;
    }
    this.queue.push({ after: this.sent, data });
  }

  clear(): void {
    this.queue = [];
    this.replyHeld = null;
  }
}

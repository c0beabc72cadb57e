/**
 * The sync marker: how RESP tracking starts in the middle of a connection whose
 * earlier bytes were never parsed (the fast path parses nothing).
 *
 * Mid-stream, the sidecar knows neither how many commands the server still has
 * to answer nor where, in the server's reply stream, the next reply starts. The
 * server knows both and answers in order, so the sidecar asks it: it sends
 * `PING <nonce>` at a command boundary and waits for the nonce to come back.
 * Everything before that reply answers commands sent before the marker; right
 * after it the reply stream is at a known boundary with nothing outstanding.
 * The reply is cut out, so the client never sees it. PING with an argument
 * answers in normal mode (`$N nonce`) and in RESP2 pub/sub mode
 * (`*2 pong nonce`), the only other command context a live client is in.
 *
 * The nonce is 96 random bits: a value in the reply stream that contains it by
 * chance is not a practical concern.
 */
import { randomBytes } from 'node:crypto';

const PUBSUB_PREFIX = Buffer.from('*2\r\n$4\r\npong\r\n');

export class SyncMarker {
  /** The command sent to the server in place of nothing (it answers no client command). */
  readonly command: Buffer;
  /** The reply in normal mode; in RESP2 pub/sub mode it is PUBSUB_PREFIX + this. */
  private readonly bulk: Buffer;
  private readonly longest: number;

  constructor() {
    const arg = `chaos-sidecar-sync-${randomBytes(12).toString('hex')}`;
    this.command = Buffer.from(`*2\r\n$4\r\nPING\r\n$${arg.length}\r\n${arg}\r\n`);
    this.bulk = Buffer.from(`$${arg.length}\r\n${arg}\r\n`);
    this.longest = PUBSUB_PREFIX.length + this.bulk.length;
  }

  /**
   * Find the marker's reply in buf. Returns [start, end) of the reply, or null. A reply split across reads is
   * found by the caller keeping the tail that holdLength() names and prepending it to the next read.
   */
  findReply(buf: Buffer): [number, number] | null {
    const at = buf.indexOf(this.bulk);
    if (at < 0) return null;
    const p = at - PUBSUB_PREFIX.length;
    const start = p >= 0 && buf.compare(PUBSUB_PREFIX, 0, PUBSUB_PREFIX.length, p, at) === 0 ? p : at;
    return [start, at + this.bulk.length];
  }

  /**
   * How many bytes at the end of buf could be the start of the marker's reply: those must wait for the next read
   * (they are held, not passed on). A complete reply of another command never ends like the start of this one
   * unless its data ends with "$" or "*2..." fragments, which only delays it until the server's next bytes.
   */
  holdLength(buf: Buffer): number {
    for (let h = Math.min(buf.length, this.longest - 1); h > 0; h--) {
      const from = buf.length - h;
      if (isPrefix(buf, from, this.bulk) || isPrefix(buf, from, Buffer.concat([PUBSUB_PREFIX, this.bulk]))) return h;
    }
    return 0;
  }

  /** Offset just after the marker command in buf, or -1 (the request side looks for it where the server reads). */
  findCommandEnd(buf: Buffer): number {
    const at = buf.indexOf(this.command);
    return at < 0 ? -1 : at + this.command.length;
  }

  get commandLength(): number {
    return this.command.length;
  }
}

/** True when buf[from..] is a prefix of pattern. */
function isPrefix(buf: Buffer, from: number, pattern: Buffer): boolean {
  const n = buf.length - from;
  return n <= pattern.length && buf.compare(pattern, 0, n, from, buf.length) === 0;
}

/** A marker command is never answered by a second redis_error fault: it is the sidecar's own. */
export function isMarkerCommand(buf: Buffer, start: number, end: number): boolean {
  const head = '*2\r\n$4\r\nPING\r\n$43\r\nchaos-sidecar-sync-';
  return end - start > head.length && buf.toString('latin1', start, start + head.length) === head;
}

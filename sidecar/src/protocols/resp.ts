/**
 * A streaming, bounded RESP scanner: finds where each Redis command (request
 * side) or reply (reply side) ends in a byte stream, without buffering bulk
 * payloads. It never loops on a bad length: anything outside Redis's own
 * limits (or a type byte RESP doesn't have) throws RespError, and the caller
 * closes that connection or stops tracking it.
 *
 * Requests: multibulk (`*N` of `$len` bulk strings) or inline lines; `*0`,
 * `*-1` and blank lines are messages Redis ignores without a reply
 * (counts = false). Replies: RESP2 and RESP3 types; a top-level push (`>`)
 * answers no command (counts = false), an attribute (`|`) is metadata of the
 * reply after it.
 */

/** Redis's limits: proto-max-bulk-len 512 MiB, 1M multibulk items, 64 KiB inline commands. */
export const RESP_LIMITS = {
  maxBulk: 512 * 1024 * 1024,
  maxRequestItems: 1024 * 1024,
  maxReplyItems: 2 ** 32,
  maxLine: 64 * 1024,
  maxDepth: 64,
};

export class RespError extends Error {}

type Mode = 'request' | 'reply';

const LINE_TYPES = new Set([0x2b, 0x2d, 0x3a, 0x5f, 0x23, 0x2c, 0x28]); // + - : _ # , (
const BULK_TYPES = new Set([0x24, 0x21, 0x3d]); // $ ! =
const AGG_TYPES = new Set([0x2a, 0x7e, 0x3e, 0x25, 0x7c]); // * ~ > % |
const PUSH = 0x3e;
const ATTR = 0x7c;

export type OnMessage = (end: number, counts: boolean) => void;

export class RespScanner {
  private partial: Buffer | null = null;
  private skip = 0;
  /** Children left per open aggregate, and its type byte. */
  private left: number[] = [];
  private kinds: number[] = [];
  /** Type byte of the top-level message in progress (0 = none). */
  private top = 0;

  constructor(readonly mode: Mode) {}

  /** A copy of this scanner's state: a stage that takes over a stream mid-way starts where the stream is. */
  clone(): RespScanner {
    const c = new RespScanner(this.mode);
    c.partial = this.partial ? Buffer.from(this.partial) : null;
    c.skip = this.skip;
    c.left = [...this.left];
    c.kinds = [...this.kinds];
    c.top = this.top;
    return c;
  }

  /** True when the stream is inside a message (some of its bytes were seen, not its end). */
  get midMessage(): boolean {
    return this.partial !== null || this.skip > 0 || this.left.length > 0;
  }

  /** Scan one chunk; onMessage(end, counts) for every message that ends in it (end = offset just after it). */
  feed(buf: Buffer, onMessage: OnMessage): void {
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - pos);
        this.skip -= take;
        pos += take;
        if (this.skip === 0) this.elementDone(pos, onMessage);
        continue;
      }
      const nl = buf.indexOf(0x0a, pos);
      const have = this.partial?.length ?? 0;
      if (nl < 0) {
        if (have + (n - pos) > RESP_LIMITS.maxLine) throw new RespError(`RESP line longer than ${RESP_LIMITS.maxLine} bytes`);
        this.partial = this.partial ? Buffer.concat([this.partial, buf.subarray(pos)]) : Buffer.from(buf.subarray(pos));
        return;
      }
      if (have + (nl + 1 - pos) > RESP_LIMITS.maxLine) throw new RespError(`RESP line longer than ${RESP_LIMITS.maxLine} bytes`);
      if (this.partial) {
        const line = Buffer.concat([this.partial, buf.subarray(pos, nl + 1)]);
        this.partial = null;
        pos = nl + 1;
        this.line(line, 0, line.length - 1, pos, onMessage);
      } else {
        const start = pos;
        pos = nl + 1;
        this.line(buf, start, nl, pos, onMessage);
      }
    }
  }

  /** The integer after the type byte of the line buf[start..nl) (no allocation: this runs per command and reply). */
  private int(buf: Buffer, start: number, nl: number): number {
    let end = nl;
    if (end > start && buf[end - 1] === 0x0d) end--;
    let i = start + 1;
    const neg = buf[i] === 0x2d;
    if (neg) i++;
    const bad = () => new RespError(`bad RESP length ${JSON.stringify(buf.toString('latin1', start + 1, Math.min(end, start + 33)))}`);
    if (i >= end || end - i > 19) throw bad();
    let n = 0;
    for (; i < end; i++) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) throw bad();
      n = n * 10 + d;
    }
    return neg ? -n : n;
  }

  /** One line: buf[start] is its type byte, nl the index of its newline, end the offset just after it. */
  private line(buf: Buffer, start: number, nl: number, end: number, onMessage: OnMessage): void {
    const type = buf[start]!;
    if (this.mode === 'request') {
      if (this.left.length === 0) {
        if (type === 0x2a) {
          const count = this.int(buf, start, nl);
          if (count > RESP_LIMITS.maxRequestItems) throw new RespError(`multibulk of ${count} items (limit ${RESP_LIMITS.maxRequestItems})`);
          if (count <= 0) return onMessage(end, false); // Redis ignores it: no reply
          this.left.push(count);
          this.kinds.push(type);
          this.top = type;
          return;
        }
        // Inline command: a line of words; a blank one gets no reply.
        const blank = nl === start || (nl === start + 1 && type === 0x0d);
        return onMessage(end, !blank);
      }
      if (type !== 0x24) throw new RespError('multibulk items must be bulk strings ($)');
      return this.bulk(this.int(buf, start, nl), end, onMessage, false);
    }
    if (this.left.length === 0) this.top = type;
    if (LINE_TYPES.has(type)) return this.elementDone(end, onMessage);
    if (BULK_TYPES.has(type)) return this.bulk(this.int(buf, start, nl), end, onMessage, true);
    if (AGG_TYPES.has(type)) {
      let count = this.int(buf, start, nl);
      if (count === -1) return this.elementDone(end, onMessage);
      if (count < -1 || count > RESP_LIMITS.maxReplyItems) throw new RespError(`bad RESP aggregate length ${count}`);
      if (type === 0x25 || type === ATTR) count *= 2;
      if (count === 0) return type === ATTR ? undefined : this.elementDone(end, onMessage);
      if (this.left.length >= RESP_LIMITS.maxDepth) throw new RespError(`RESP nested deeper than ${RESP_LIMITS.maxDepth}`);
      this.left.push(count);
      this.kinds.push(type);
      return;
    }
    throw new RespError(`unknown RESP type byte 0x${type.toString(16)}`);
  }

  private bulk(len: number, end: number, onMessage: OnMessage, nullable: boolean): void {
    if (len === -1 && nullable) return this.elementDone(end, onMessage);
    if (len < 0 || len > RESP_LIMITS.maxBulk) throw new RespError(`bad bulk length ${len} (0..${RESP_LIMITS.maxBulk})`);
    this.skip = len + 2;
  }

  private elementDone(end: number, onMessage: OnMessage): void {
    while (this.left.length > 0) {
      const i = this.left.length - 1;
      if (--this.left[i]! > 0) return;
      this.left.pop();
      // A finished attribute is metadata of the element after it, not an element itself.
      if (this.kinds.pop() === ATTR) return;
    }
    const top = this.top;
    this.top = 0;
    onMessage(end, this.mode === 'request' || top !== PUSH);
  }
}

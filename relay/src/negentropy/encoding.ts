/**
 * NIP-77 negentropy wire format (protocol version 1, byte 0x61): varints, delta-encoded timestamps and
 * range bounds. Written from the spec (hoytech/negentropy); the same layout strfry and nostr-tools speak.
 */
export const PROTOCOL_VERSION = 0x61;
export const ID_SIZE = 32;
export const FINGERPRINT_SIZE = 16;

export const enum Mode {
  Skip = 0,
  Fingerprint = 1,
  IdList = 2,
}

/** A range boundary: everything strictly below (timestamp, id prefix). `Infinity` is the open upper end. */
export interface Bound {
  timestamp: number;
  id: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function bound(timestamp: number, id: Uint8Array = EMPTY): Bound {
  return { timestamp, id };
}

export class NegentropyError extends Error {}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

/** Sequential reader over one message; every read checks bounds so a truncated message is an error, not garbage. */
export class Reader {
  private pos = 0;
  private lastTimestamp = 0;
  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw new NegentropyError('message ends prematurely');
    return this.buf[this.pos++]!;
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new NegentropyError('message ends prematurely');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  varint(): number {
    let result = 0;
    for (let i = 0; ; i++) {
      // 8 groups of 7 bits already exceed 2^53: refuse rather than lose precision.
      if (i > 8) throw new NegentropyError('varint too long');
      const b = this.byte();
      result = result * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) return result;
    }
  }

  /** Timestamps are sent as delta+1 from the previous one in the same message; 0 means infinity. */
  timestamp(): number {
    const encoded = this.varint();
    if (encoded === 0 || this.lastTimestamp === Infinity) {
      this.lastTimestamp = Infinity;
      return Infinity;
    }
    this.lastTimestamp += encoded - 1;
    return this.lastTimestamp;
  }

  bound(): Bound {
    const timestamp = this.timestamp();
    const len = this.varint();
    if (len > ID_SIZE) throw new NegentropyError('bound id prefix longer than 32 bytes');
    return { timestamp, id: this.bytes(len) };
  }
}

/** Timestamp delta state of one outgoing message, shared by the pieces it is assembled from. */
export interface TimestampState {
  last: number;
}

/** Growable output buffer; timestamps are delta-encoded against `state` (shared across one message's pieces). */
export class Writer {
  private buf = new Uint8Array(256);
  length = 0;
  constructor(private readonly state: TimestampState = { last: 0 }) {}

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + extra));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
  }

  varint(n: number): void {
    this.bytes(encodeVarint(n));
  }

  timestamp(ts: number): void {
    if (ts === Infinity) {
      this.state.last = Infinity;
      this.varint(0);
      return;
    }
    const delta = ts - this.state.last;
    this.state.last = ts;
    this.varint(delta + 1);
  }

  bound(b: Bound): void {
    this.timestamp(b.timestamp);
    this.varint(b.id.length);
    this.bytes(b.id);
  }

  /** Appends another writer's bytes (both share one timestamp state, so deltas stay in emission order). */
  append(other: Writer): void {
    this.bytes(other.result());
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new NegentropyError(`cannot encode ${n} as a varint`);
  if (n === 0) return Uint8Array.of(0);
  const out: number[] = [];
  while (n > 0) {
    out.push(n % 128);
    n = Math.floor(n / 128);
  }
  out.reverse();
  for (let i = 0; i < out.length - 1; i++) out[i]! |= 0x80;
  return Uint8Array.from(out);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new NegentropyError('message is not valid hex');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

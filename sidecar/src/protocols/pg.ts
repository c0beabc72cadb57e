/**
 * The PostgreSQL startup phase, bounded: a client's first packets are
 * Int32 length (itself included) + Int32 code + body. PostgreSQL refuses a
 * length under 8 or over MAX_STARTUP_PACKET_LENGTH (10000) and so do we; a
 * zero or negative length would otherwise never advance the parser.
 */
export const MAX_STARTUP_PACKET = 10_000;
export const SSL_REQUEST = 80877103;
export const GSS_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

export class PgProtocolError extends Error {}

/** The first complete startup packet in buf: its length and code, or null when more bytes are needed. */
export function readStartupPacket(buf: Buffer): { len: number; code: number } | null {
  if (buf.length < 4) return null;
  const len = buf.readInt32BE(0);
  if (len < 8 || len > MAX_STARTUP_PACKET) throw new PgProtocolError(`bad startup packet length ${len} (8..${MAX_STARTUP_PACKET})`);
  if (buf.length < len) return null;
  return { len, code: buf.readInt32BE(4) };
}

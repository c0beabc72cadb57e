/**
 * Finding a command boundary in a RESP request stream joined mid-way (the
 * fast path forwarded the bytes before without parsing them).
 *
 * A position is taken as the start of a command when it follows a newline (or
 * is the first byte read after the fault arrived) and begins with a complete,
 * well-formed multibulk header whose first item is a command name:
 * `*<1-7 digits>\r\n$<1-2 digits>\r\n<name>\r\n`, name letters first, then
 * letters, digits, `_ . | -`. Client libraries send whole commands in one
 * write, so on a live connection the first read after the fault almost always
 * starts one; a half-sent command is recognised as not starting one and
 * forwarded until the next command starts. The one way to be wrong is a bulk
 * value (a SET payload, say) in flight when the fault arrives that itself
 * contains a newline followed by such a header; after the chosen boundary the
 * stream is parsed strictly, so what follows a wrong choice most likely breaks
 * the parser and closes the connection (counted) rather than passing silently.
 * Inline commands are not boundaries here; they are answered once a multibulk
 * command has synchronised the stream.
 */

const STAR = 0x2a;
const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Offset of the first command start in buf, or -1. prevByte is the stream's byte just before buf: -1 when buf is
 * the first read since the fault arrived (no byte seen yet), otherwise the last byte of the previous read.
 */
export function findCommandStart(buf: Buffer, prevByte: number): number {
  if ((prevByte === -1 || prevByte === LF) && headerAt(buf, 0)) return 0;
  let from = 0;
  for (;;) {
    const nl = buf.indexOf(LF, from);
    if (nl < 0 || nl + 1 >= buf.length) return -1;
    if (buf[nl + 1] === STAR && headerAt(buf, nl + 1)) return nl + 1;
    from = nl + 1;
  }
}

/** Read `<digits>\r\n` at i; returns [value, next index] or null. */
function digits(buf: Buffer, i: number, max: number): [number, number] | null {
  let n = 0;
  let k = 0;
  while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
    if (++k > max) return null;
    n = n * 10 + buf[i]! - 0x30;
    i++;
  }
  if (k === 0 || buf[i] !== CR || buf[i + 1] !== LF) return null;
  return [n, i + 2];
}

function nameByte(b: number, first: boolean): boolean {
  const letter = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
  if (first) return letter;
  return letter || (b >= 0x30 && b <= 0x39) || b === 0x5f || b === 0x2e || b === 0x7c || b === 0x2d;
}

function headerAt(buf: Buffer, p: number): boolean {
  if (buf[p] !== STAR) return false;
  const items = digits(buf, p + 1, 7);
  if (!items || items[0] < 1) return false;
  let i = items[1];
  if (buf[i] !== DOLLAR) return false;
  const len = digits(buf, i + 1, 2);
  if (!len || len[0] < 1) return false;
  i = len[1];
  if (i + len[0] + 2 > buf.length) return false;
  for (let k = 0; k < len[0]; k++) if (!nameByte(buf[i + k]!, k === 0)) return false;
  return buf[i + len[0]] === CR && buf[i + len[0] + 1] === LF;
}

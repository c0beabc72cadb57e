/**
 * Strict lowercase-hex decoding shared by every verifier backend, so they accept exactly the same inputs
 * (NIP-01 requires lowercase hex; the relay's shape check rejects anything else anyway).
 */

const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) NIBBLE[97 + i] = 10 + i;

/** Decodes exactly `bytes` bytes of lowercase hex, or returns null for anything else (wrong type, length or character). */
export function hexToBytes(value: unknown, bytes: number): Uint8Array | null {
  if (typeof value !== 'string' || value.length !== bytes * 2) return null;
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const hi = value.charCodeAt(2 * i);
    const lo = value.charCodeAt(2 * i + 1);
    // Codes >= 128 index past the table and yield undefined, which fails the check below.
    const h = hi < 128 ? NIBBLE[hi]! : -1;
    const l = lo < 128 ? NIBBLE[lo]! : -1;
    if (h < 0 || l < 0) return null;
    out[i] = (h << 4) | l;
  }
  return out;
}

/** Decoded (id, pubkey, sig) triple, or null when any part is malformed. */
export function decodeTriple(
  idHex: unknown,
  pubkeyHex: unknown,
  sigHex: unknown,
): { msg: Uint8Array; pubkey: Uint8Array; sig: Uint8Array } | null {
  const msg = hexToBytes(idHex, 32);
  if (!msg) return null;
  const pubkey = hexToBytes(pubkeyHex, 32);
  if (!pubkey) return null;
  const sig = hexToBytes(sigHex, 64);
  if (!sig) return null;
  return { msg, pubkey, sig };
}

/** Cheap length/type pre-check used on the main thread to skip a worker round trip for obvious junk. */
export function plausibleTriple(idHex: unknown, pubkeyHex: unknown, sigHex: unknown): boolean {
  return (
    typeof idHex === 'string' &&
    idHex.length === 64 &&
    typeof pubkeyHex === 'string' &&
    pubkeyHex.length === 64 &&
    typeof sigHex === 'string' &&
    sigHex.length === 128
  );
}

import { createHash } from 'node:crypto';
import { encodeVarint, FINGERPRINT_SIZE, ID_SIZE } from './encoding.js';

const LIMBS = ID_SIZE / 4;
/** Limb sums stay exact in a double while fewer than 2^21 ids of 2^32 each are added; normalise before that. */
const NORMALISE_EVERY = 1 << 20;

/**
 * NIP-77 fingerprint of ids[begin, end): the first 16 bytes of sha256(sum of the ids as 256-bit little-endian
 * integers mod 2^256 || varint(count)). Sums per 32-bit limb without carries and resolves carries at the end:
 * several times faster than carrying after every id, which matters at a million records.
 */
export function fingerprint(ids: Uint8Array, begin: number, end: number): Uint8Array {
  const view = new DataView(ids.buffer, ids.byteOffset, ids.byteLength);
  const sums = new Float64Array(LIMBS);
  let pending = 0;
  for (let i = begin; i < end; i++) {
    const offset = i * ID_SIZE;
    for (let limb = 0; limb < LIMBS; limb++) sums[limb]! += view.getUint32(offset + limb * 4, true);
    if (++pending === NORMALISE_EVERY) {
      normalise(sums);
      pending = 0;
    }
  }
  normalise(sums);
  const sum = new Uint8Array(ID_SIZE);
  const out = new DataView(sum.buffer);
  for (let limb = 0; limb < LIMBS; limb++) out.setUint32(limb * 4, sums[limb]!, true);
  return createHash('sha256').update(sum).update(encodeVarint(end - begin)).digest().subarray(0, FINGERPRINT_SIZE);
}

/** Carries every limb into the next; the carry out of the top limb is dropped (mod 2^256). */
function normalise(sums: Float64Array): void {
  let carry = 0;
  for (let limb = 0; limb < LIMBS; limb++) {
    const v = sums[limb]! + carry;
    const low = v % 4294967296;
    carry = (v - low) / 4294967296;
    sums[limb] = low;
  }
}

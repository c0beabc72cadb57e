import { createHash } from 'node:crypto';
import * as secp from '@noble/secp256k1';
import { decodeTriple } from './hex.js';
import { MainThreadVerifier } from './main-thread-verifier.js';

// noble 3.x ships without hash implementations for its sync API; node:crypto's sha256 is the fastest available.
secp.hashes.sha256 = (m) => new Uint8Array(createHash('sha256').update(m).digest());

/** Synchronous BIP-340 check on the calling thread; false for malformed input or any library error. */
export function nobleVerifySync(idHex: unknown, pubkeyHex: unknown, sigHex: unknown): boolean {
  const t = decodeTriple(idHex, pubkeyHex, sigHex);
  if (!t) return false;
  try {
    return secp.schnorr.verify(t.sig, t.msg, t.pubkey) === true;
  } catch {
    // noble throws for out-of-range values (e.g. pubkey not on the curve); that is an invalid signature.
    return false;
  }
}

/**
 * Reference verifier: pure JS on the main thread (a few hundred verifications/s per core).
 * Used when neither the native addon nor a worker pool is available, and as the oracle the others are tested against.
 */
export class NobleVerifier extends MainThreadVerifier {
  constructor() {
    super('noble', nobleVerifySync);
  }
}

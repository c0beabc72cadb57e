import { createHash } from 'node:crypto';
import * as secp from '@noble/secp256k1';
import { decodeTriple } from './hex.js';
import type { SignatureVerifier } from './types.js';

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
 * Reference verifier: pure JS on the main thread (~400 verifications/s per core).
 * Used when no worker pool is configured and as the oracle the pool is tested against.
 */
export class NobleVerifier implements SignatureVerifier {
  private closed = false;

  async verify(idHex: string, pubkeyHex: string, sigHex: string): Promise<boolean> {
    this.assertOpen();
    return nobleVerifySync(idHex, pubkeyHex, sigHex);
  }

  async verifyMany(items: Array<{ id: string; pubkey: string; sig: string }>): Promise<boolean[]> {
    this.assertOpen();
    return items.map((it) => (it ? nobleVerifySync(it.id, it.pubkey, it.sig) : false));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    // Using a closed verifier is a programming error, not bad input, so it is reported rather than answered false.
    if (this.closed) throw new Error('verifier is closed');
  }
}

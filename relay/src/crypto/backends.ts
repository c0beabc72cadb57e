/**
 * The three BIP-340 implementations the relay can verify with, behind one shape (hex triple → boolean), so the
 * worker pool and the main-thread verifier run any of them. Hex decoding is hex.ts's strict decoder for all three.
 */
import { decodeTriple } from './hex.js';
import { loadNativeSecp256k1, type NativeSecp256k1 } from './native-secp256k1.js';

export const VERIFIER_BACKENDS = ['native', 'wasm', 'noble'] as const;
/** native: libsecp256k1 addon; wasm: tiny-secp256k1 (libsecp256k1 compiled to WASM); noble: @noble/secp256k1 (JS). */
export type VerifierBackend = (typeof VERIFIER_BACKENDS)[number];

/** Verifies one event's (id, pubkey, sig) hex; false for malformed input or any library error, never throws. */
export type HexVerify = (idHex: unknown, pubkeyHex: unknown, sigHex: unknown) => boolean;

type BytesVerify = (msg: Uint8Array, pubkey: Uint8Array, sig: Uint8Array) => boolean;

function overBytes(verify: BytesVerify): HexVerify {
  return (idHex, pubkeyHex, sigHex) => {
    const t = decodeTriple(idHex, pubkeyHex, sigHex);
    if (!t) return false;
    try {
      return verify(t.msg, t.pubkey, t.sig) === true;
    } catch {
      // tiny-secp256k1 throws for a pubkey that is not on the curve; that is just an invalid signature.
      return false;
    }
  };
}

/** The native addon behind the hex shape (synchronous, for a module already loaded). */
export function nativeHexVerify(m: NativeSecp256k1): HexVerify {
  return overBytes((msg, pubkey, sig) => m.verify(msg, pubkey, sig));
}

/** Loads a backend; rejects when it cannot be used here (the native addon not built or failing its self-check). */
export async function loadBackend(backend: VerifierBackend): Promise<HexVerify> {
  switch (backend) {
    case 'native': {
      const loaded = loadNativeSecp256k1();
      if (!loaded.ok) throw new Error(`native libsecp256k1 verifier ${loaded.reason} (${loaded.path})`);
      return nativeHexVerify(loaded.module);
    }
    case 'wasm': {
      const { verifySchnorr } = await import('tiny-secp256k1');
      return overBytes(verifySchnorr);
    }
    case 'noble': {
      const { nobleVerifySync } = await import('./noble-verifier.js');
      return nobleVerifySync;
    }
  }
}

/**
 * Loads the optional libsecp256k1 N-API addon (relay/native/secp256k1, built by `make native`).
 * Any failure — not built, libsecp256k1.so missing, wrong ABI, or a build that answers the known-answer check
 * wrongly — yields a reason instead of a module, so callers fall back to the WASM or JS verifier.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's one export: BIP-340 verification of a 32-byte message; throws TypeError for wrong sizes or types. */
export interface NativeSecp256k1 {
  verify(msg32: Uint8Array, pubkey32: Uint8Array, sig64: Uint8Array): boolean;
}

export type NativeLoad = { ok: true; module: NativeSecp256k1; path: string } | { ok: false; reason: string; path: string };

// relay/src/crypto and relay/dist/crypto are both two levels below relay/, so one relative path serves both.
export const DEFAULT_NATIVE_PATH = fileURLToPath(new URL('../../native/secp256k1/build/Release/secp256k1_verify.node', import.meta.url));

const require = createRequire(import.meta.url);
const cache = new Map<string, NativeLoad>();

const fromHex = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
// BIP-340 test vectors 0 (valid) and 5 (public key not on the curve), and vector 0 with its last sig bit flipped.
const KAT_MSG = fromHex('00'.repeat(32));
const KAT_PUB = fromHex('f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9');
const KAT_SIG = fromHex('e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca821525f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0');
const KAT_SIG_FLIPPED = KAT_SIG.map((b, i) => (i === 63 ? b ^ 1 : b));
const KAT_OFF_CURVE_MSG = fromHex('243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89');
const KAT_OFF_CURVE_PUB = fromHex('eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34');
const KAT_OFF_CURVE_SIG = fromHex('6cff5c3ba86c69ea4b7376f31a9bcb4f74c1976089b2d9963da2e5543e17776969e89b4c5564d00349106b8497785dd7d1d713a8ae82b32fa79d5f7fc407d39b');

/**
 * Known-answer check of a loaded module: a valid vector verifies, a one-bit forgery and an off-curve key do not,
 * and a short buffer is refused rather than read. Returns what is wrong, or null.
 */
export function checkNativeModule(mod: unknown): string | null {
  const m = mod as Partial<NativeSecp256k1> | null;
  if (!m || typeof m.verify !== 'function') return 'module has no verify function';
  try {
    if (m.verify(KAT_MSG, KAT_PUB, KAT_SIG) !== true) return 'BIP-340 vector 0 did not verify';
    if (m.verify(KAT_MSG, KAT_PUB, KAT_SIG_FLIPPED) !== false) return 'a one-bit forgery of vector 0 verified';
    if (m.verify(KAT_OFF_CURVE_MSG, KAT_OFF_CURVE_PUB, KAT_OFF_CURVE_SIG) !== false) return 'BIP-340 vector 5 (off-curve key) verified';
  } catch (err) {
    return `known-answer check threw: ${(err as Error).message}`;
  }
  try {
    m.verify(KAT_MSG.subarray(0, 31), KAT_PUB, KAT_SIG);
    return 'a 31-byte message was accepted';
  } catch {
    return null;
  }
}

/** Loads (once per path per thread) and checks the addon. */
export function loadNativeSecp256k1(path: string = DEFAULT_NATIVE_PATH): NativeLoad {
  const cached = cache.get(path);
  if (cached) return cached;
  let result: NativeLoad;
  try {
    const mod: unknown = require(path);
    const problem = checkNativeModule(mod);
    result = problem ? { ok: false, reason: `failed its self-check: ${problem}`, path } : { ok: true, module: mod as NativeSecp256k1, path };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    result = { ok: false, reason: e.code === 'MODULE_NOT_FOUND' ? 'not built (run `make native`)' : `could not be loaded: ${e.message}`, path };
  }
  cache.set(path, result);
  return result;
}

import { loadBackend, nativeHexVerify, type VerifierBackend } from './backends.js';
import { MainThreadVerifier } from './main-thread-verifier.js';
import { loadNativeSecp256k1, type NativeLoad } from './native-secp256k1.js';
import { NobleVerifier } from './noble-verifier.js';
import { WorkerPoolVerifier } from './worker-pool-verifier.js';
import type { SignatureVerifier } from './types.js';
import type { VerifierChoice } from './verifier-choice.js';

/** `verifier: native` was asked for and the addon cannot load: a configuration error (the CLI exits 2). */
export class VerifierUnavailableError extends Error {
  override name = 'VerifierUnavailableError';
}

export interface ChosenVerifier {
  verifier: SignatureVerifier;
  backend: VerifierBackend;
  /** Worker threads verifying; 0 = the main thread. */
  workers: number;
  /** Why `auto` did not get the native addon (logged at start). */
  fallback?: string;
}

/**
 * Picks the library from `choice` and the place from `workers` (> 0: a worker pool of that size; 0: the main thread).
 * `auto` uses the native libsecp256k1 addon when it is built and passes its self-check; otherwise tiny-secp256k1 in
 * the pool, or noble on the main thread when `workers` is 0 (the behaviour before the addon existed).
 * An explicit `native` that cannot load throws: the operator asked for it.
 */
export function createVerifier(workers: number, choice: VerifierChoice = 'auto', loadNative: () => NativeLoad = loadNativeSecp256k1): ChosenVerifier {
  const n = Number.isFinite(workers) && workers > 0 ? Math.floor(workers) : 0;
  let backend: VerifierBackend;
  let fallback: string | undefined;
  let native: NativeLoad | undefined;
  if (choice === 'auto' || choice === 'native') {
    native = loadNative();
    if (native.ok) backend = 'native';
    else if (choice === 'native') throw new VerifierUnavailableError(`verifier native: the libsecp256k1 addon ${native.reason} (${native.path})`);
    else {
      backend = n > 0 ? 'wasm' : 'noble';
      fallback = `native libsecp256k1 addon ${native.reason}`;
    }
  } else backend = choice;

  let verifier: SignatureVerifier;
  if (n > 0) verifier = new WorkerPoolVerifier({ workers: n, backend });
  else if (backend === 'noble') verifier = new NobleVerifier();
  else if (backend === 'native' && native?.ok) verifier = new MainThreadVerifier('native', nativeHexVerify(native.module));
  else verifier = new MainThreadVerifier(backend, loadBackend(backend));
  return fallback === undefined ? { verifier, backend, workers: n } : { verifier, backend, workers: n, fallback };
}

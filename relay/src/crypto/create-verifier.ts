import { NobleVerifier } from './noble-verifier.js';
import { WorkerPoolVerifier } from './worker-pool-verifier.js';
import type { SignatureVerifier } from './types.js';

/** `workers > 0` → tiny-secp256k1 worker pool of that size; otherwise the main-thread noble verifier. */
export function createVerifier(workers: number): SignatureVerifier {
  if (Number.isFinite(workers) && workers > 0) return new WorkerPoolVerifier({ workers: Math.floor(workers) });
  return new NobleVerifier();
}

/** Messages between WorkerPoolVerifier and verify-worker. */
import type { VerifierBackend } from './backends.js';

/** Passed as the worker's workerData. */
export interface WorkerData {
  backend: VerifierBackend;
}

/** One micro-batch: `flat` holds id, pubkey, sig for each item in turn (fewer, flatter objects clone faster). */
export interface WorkerRequest {
  seq: number;
  flat: unknown[];
}

export type WorkerResponse =
  /** `backend` is optional so test workers that only announce readiness need not name one. */
  | { type: 'ready'; backend?: VerifierBackend }
  /** results[i] is 1 when item i verified, 0 otherwise. */
  | { type: 'result'; seq: number; results: Uint8Array };

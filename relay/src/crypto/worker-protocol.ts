/** Messages between WorkerPoolVerifier and verify-worker. */

/** One micro-batch: `flat` holds id, pubkey, sig for each item in turn (fewer, flatter objects clone faster). */
export interface WorkerRequest {
  seq: number;
  flat: unknown[];
}

export type WorkerResponse =
  | { type: 'ready' }
  /** results[i] is 1 when item i verified, 0 otherwise. */
  | { type: 'result'; seq: number; results: Uint8Array };

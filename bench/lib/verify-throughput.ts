import { NobleVerifier } from '../../relay/src/crypto/noble-verifier.js';
import { WorkerPoolVerifier } from '../../relay/src/crypto/worker-pool-verifier.js';
import type { SignatureVerifier } from '../../relay/src/crypto/types.js';

export interface VerifyItem {
  id: string;
  pubkey: string;
  sig: string;
}

export interface VerifyThroughput {
  name: string;
  /** Threads doing the verifying (the cores this figure is divided by). */
  threads: number;
  items: number;
  ms: number;
  perSecond: number;
  perSecondPerCore: number;
  /** Items that did not verify (should be 0 for freshly signed events; otherwise the figure is suspect). */
  failures: number;
  /** Rounds timed; the figure is the fastest (least disturbed by other load on the machine). */
  rounds: number;
  /** Slowest round's rate, to show how noisy the machine was. */
  worstPerSecond: number;
}

export const DEFAULT_ROUNDS = 3;

async function timeVerifier(name: string, threads: number, verifier: SignatureVerifier, items: VerifyItem[], rounds: number): Promise<VerifyThroughput> {
  // Warm-up: JIT for noble, WASM tier-up and worker start for the pool.
  await verifier.verifyMany(items.slice(0, Math.min(200, items.length)));
  let best = Infinity;
  let worst = 0;
  let failures = 0;
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    const results = await verifier.verifyMany(items);
    const ms = performance.now() - started;
    best = Math.min(best, ms);
    worst = Math.max(worst, ms);
    failures = Math.max(failures, results.filter((ok) => !ok).length);
  }
  const perSecond = (items.length * 1000) / best;
  return { name, threads, items: items.length, ms: best, perSecond, perSecondPerCore: perSecond / threads, failures, rounds, worstPerSecond: (items.length * 1000) / worst };
}

/** @noble/secp256k1 on the calling thread: the baseline. */
export async function measureNoble(items: VerifyItem[], rounds = DEFAULT_ROUNDS): Promise<VerifyThroughput> {
  const v = new NobleVerifier();
  try {
    return await timeVerifier('@noble/secp256k1 (main thread)', 1, v, items, rounds);
  } finally {
    await v.close();
  }
}

/** tiny-secp256k1 in a pool of `workers` threads; per-core divides by min(workers, cores). */
export async function measurePool(items: VerifyItem[], workers: number, cores: number, rounds = DEFAULT_ROUNDS): Promise<VerifyThroughput> {
  const v = new WorkerPoolVerifier({ workers });
  try {
    await v.ready();
    return await timeVerifier(`tiny-secp256k1 pool (${workers} worker${workers === 1 ? '' : 's'})`, Math.min(workers, cores), v, items, rounds);
  } finally {
    await v.close();
  }
}

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
}

async function timeVerifier(name: string, threads: number, verifier: SignatureVerifier, items: VerifyItem[]): Promise<VerifyThroughput> {
  // Warm-up: JIT for noble, WASM tier-up and worker start for the pool.
  await verifier.verifyMany(items.slice(0, Math.min(200, items.length)));
  const started = performance.now();
  const results = await verifier.verifyMany(items);
  const ms = performance.now() - started;
  const perSecond = (items.length * 1000) / ms;
  return { name, threads, items: items.length, ms, perSecond, perSecondPerCore: perSecond / threads, failures: results.filter((r) => !r).length };
}

/** @noble/secp256k1 on the calling thread: the baseline. */
export async function measureNoble(items: VerifyItem[]): Promise<VerifyThroughput> {
  const v = new NobleVerifier();
  try {
    return await timeVerifier('@noble/secp256k1 (main thread)', 1, v, items);
  } finally {
    await v.close();
  }
}

/** tiny-secp256k1 in a pool of `workers` threads; per-core divides by min(workers, cores). */
export async function measurePool(items: VerifyItem[], workers: number, cores: number): Promise<VerifyThroughput> {
  const v = new WorkerPoolVerifier({ workers });
  try {
    await v.ready();
    return await timeVerifier(`tiny-secp256k1 pool (${workers} worker${workers === 1 ? '' : 's'})`, Math.min(workers, cores), v, items);
  } finally {
    await v.close();
  }
}

import { performance } from 'node:perf_hooks';
import { loadBackend, nativeHexVerify, type VerifierBackend } from '../../relay/src/crypto/backends.js';
import { MainThreadVerifier } from '../../relay/src/crypto/main-thread-verifier.js';
import { loadNativeSecp256k1 } from '../../relay/src/crypto/native-secp256k1.js';
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
  /**
   * Main-thread (event loop) busy time per verification in the fastest round, µs: what the relay's own thread pays,
   * the thing a worker pool is meant to shrink.
   */
  mainThreadUsPerItem: number;
  /** Median time for one verify() awaited on its own (no batching): a lone event's added latency, µs. */
  loneP50Us: number;
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
  let bestBusyMs = 0;
  let worst = 0;
  let failures = 0;
  for (let r = 0; r < rounds; r++) {
    const elu = performance.eventLoopUtilization();
    const started = performance.now();
    const results = await verifier.verifyMany(items);
    const ms = performance.now() - started;
    // ELU's `active` covers the synchronous work in this round too (it is measured up to now).
    const busyMs = performance.eventLoopUtilization(elu).active;
    if (ms < best) {
      best = ms;
      bestBusyMs = busyMs;
    }
    worst = Math.max(worst, ms);
    failures = Math.max(failures, results.filter((ok) => !ok).length);
  }
  // One request at a time: the pool's round trip (setImmediate, postMessage both ways) shows up here.
  const lone: number[] = [];
  for (let i = 0; i < Math.min(300, items.length); i++) {
    const it = items[i]!;
    const started = performance.now();
    if (!(await verifier.verify(it.id, it.pubkey, it.sig))) failures = Math.max(failures, 1);
    lone.push((performance.now() - started) * 1000);
  }
  lone.sort((a, b) => a - b);
  const perSecond = (items.length * 1000) / best;
  return {
    name,
    threads,
    items: items.length,
    ms: best,
    perSecond,
    perSecondPerCore: perSecond / threads,
    mainThreadUsPerItem: (bestBusyMs * 1000) / items.length,
    loneP50Us: lone[Math.floor(lone.length / 2)] ?? NaN,
    failures,
    rounds,
    worstPerSecond: (items.length * 1000) / worst,
  };
}

const LABEL: Record<VerifierBackend, string> = {
  native: 'native libsecp256k1',
  wasm: 'tiny-secp256k1 (WASM)',
  noble: '@noble/secp256k1',
};

/** Whether the native addon is built and passes its self-check here (why not, otherwise). */
export function nativeAvailable(): { ok: true } | { ok: false; reason: string } {
  const l = loadNativeSecp256k1();
  return l.ok ? { ok: true } : { ok: false, reason: l.reason };
}

/** @noble/secp256k1 on the calling thread: the baseline. */
export async function measureNoble(items: VerifyItem[], rounds = DEFAULT_ROUNDS): Promise<VerifyThroughput> {
  const v = new NobleVerifier();
  try {
    return await timeVerifier(`${LABEL.noble} (main thread)`, 1, v, items, rounds);
  } finally {
    await v.close();
  }
}

/** Any backend synchronously on the calling thread. */
export async function measureMainThread(backend: VerifierBackend, items: VerifyItem[], rounds = DEFAULT_ROUNDS): Promise<VerifyThroughput> {
  if (backend === 'noble') return measureNoble(items, rounds);
  const native = backend === 'native' ? loadNativeSecp256k1() : undefined;
  if (native && !native.ok) throw new Error(`native addon ${native.reason}`);
  const v = new MainThreadVerifier(backend, native?.ok ? nativeHexVerify(native.module) : loadBackend(backend));
  try {
    return await timeVerifier(`${LABEL[backend]} (main thread)`, 1, v, items, rounds);
  } finally {
    await v.close();
  }
}

/** `backend` (default tiny-secp256k1) in a pool of `workers` threads; per-core divides by min(workers, cores). */
export async function measurePool(items: VerifyItem[], workers: number, cores: number, rounds = DEFAULT_ROUNDS, backend: VerifierBackend = 'wasm'): Promise<VerifyThroughput> {
  const v = new WorkerPoolVerifier({ workers, backend });
  try {
    await v.ready();
    return await timeVerifier(`${LABEL[backend]} pool (${workers} worker${workers === 1 ? '' : 's'})`, Math.min(workers, cores), v, items, rounds);
  } finally {
    await v.close();
  }
}

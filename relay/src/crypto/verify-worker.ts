/**
 * worker_threads entry: verifies batches of (id, pubkey, sig) hex triples with the backend named in workerData
 * (native libsecp256k1, tiny-secp256k1 WASM, or noble). Hex decoding happens here so the main thread only pays for
 * postMessage of short strings.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { VERIFIER_BACKENDS, loadBackend, type VerifierBackend } from './backends.js';
import type { WorkerData, WorkerRequest, WorkerResponse } from './worker-protocol.js';

if (!parentPort) throw new Error('verify-worker must be started as a worker thread');
const port = parentPort;

const requested = (workerData as Partial<WorkerData> | undefined)?.backend ?? 'wasm';
if (!VERIFIER_BACKENDS.includes(requested)) throw new Error(`unknown verifier backend ${String(requested)}`);
const backend: VerifierBackend = requested;
// A backend that cannot load here fails the worker at startup, which the pool reports instead of hanging.
const verifyOne = await loadBackend(backend);

port.on('message', (req: WorkerRequest) => {
  const n = Math.floor(req.flat.length / 3);
  const results = new Uint8Array(n);
  for (let i = 0; i < n; i++) results[i] = verifyOne(req.flat[3 * i], req.flat[3 * i + 1], req.flat[3 * i + 2]) ? 1 : 0;
  const res: WorkerResponse = { type: 'result', seq: req.seq, results };
  port.postMessage(res, [results.buffer]);
});

// Announced once the backend is loaded (WASM instantiated, addon self-checked).
const ready: WorkerResponse = { type: 'ready', backend };
port.postMessage(ready);

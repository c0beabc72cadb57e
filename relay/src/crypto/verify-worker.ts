/**
 * worker_threads entry: verifies batches of (id, pubkey, sig) hex triples with tiny-secp256k1 (libsecp256k1 in WASM).
 * Hex decoding happens here so the main thread only pays for postMessage of short strings.
 */
import { parentPort } from 'node:worker_threads';
import { verifySchnorr } from 'tiny-secp256k1';
import { decodeTriple } from './hex.js';
import type { WorkerRequest, WorkerResponse } from './worker-protocol.js';

if (!parentPort) throw new Error('verify-worker must be started as a worker thread');
const port = parentPort;

function verifyOne(id: unknown, pubkey: unknown, sig: unknown): boolean {
  const t = decodeTriple(id, pubkey, sig);
  if (!t) return false;
  try {
    return verifySchnorr(t.msg, t.pubkey, t.sig);
  } catch {
    // tiny-secp256k1 throws for a pubkey that is not on the curve; that is just an invalid signature.
    return false;
  }
}

port.on('message', (req: WorkerRequest) => {
  const n = Math.floor(req.flat.length / 3);
  const results = new Uint8Array(n);
  for (let i = 0; i < n; i++) results[i] = verifyOne(req.flat[3 * i], req.flat[3 * i + 1], req.flat[3 * i + 2]) ? 1 : 0;
  const res: WorkerResponse = { type: 'result', seq: req.seq, results };
  port.postMessage(res, [results.buffer]);
});

// Announced after tiny-secp256k1's WASM module has been instantiated by the import above.
const ready: WorkerResponse = { type: 'ready' };
port.postMessage(ready);

// Signs a slice of benchmark events off the main thread. Plain JS so it runs as a worker without a TS loader.
import { parentPort, workerData } from 'node:worker_threads';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';

const { count, authors, kind, createdAt, nonce, offset, pad } = workerData;
const keys = Array.from({ length: Math.max(1, authors) }, () => generateSecretKey());
const events = [];
for (let i = 0; i < count; i++) {
  const n = offset + i;
  events.push(finalizeEvent({ kind, created_at: createdAt, tags: [['t', 'bench']], content: `bench ${nonce} #${n} ${pad}` }, keys[n % keys.length]));
}
parentPort.postMessage(events);

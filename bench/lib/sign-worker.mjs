// Signs a slice of benchmark events off the main thread. Plain JS so it runs as a worker without a TS loader.
// Signs with libsecp256k1 (tiny-secp256k1, WASM): about 10x faster than nostr-tools' pure-JS signer, so
// preparing 20,000 events takes seconds, not minutes. The events are standard NIP-01 events all the same.
import { createHash, randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import * as ecc from 'tiny-secp256k1';

const { count, authors, kind, createdAt, nonce, offset, pad, topics } = workerData;
const keys = Array.from({ length: Math.max(1, authors) }, () => {
  for (;;) {
    const secret = randomBytes(32);
    if (ecc.isPrivate(secret)) return { secret, pubkey: Buffer.from(ecc.xOnlyPointFromScalar(secret)).toString('hex') };
  }
});
const events = [];
for (let i = 0; i < count; i++) {
  const n = offset + i;
  const key = keys[n % keys.length];
  // With `topics`, each event also carries one of that many topic tags (bench/fanout's subscriptions select on them).
  const tags = topics > 0 ? [['t', 'bench'], ['t', `topic-${n % topics}`]] : [['t', 'bench']];
  const content = `bench ${nonce} #${n} ${pad}`;
  const id = createHash('sha256').update(JSON.stringify([0, key.pubkey, createdAt, kind, tags, content])).digest();
  const sig = Buffer.from(ecc.signSchnorr(id, key.secret, randomBytes(32))).toString('hex');
  events.push({ id: id.toString('hex'), pubkey: key.pubkey, created_at: createdAt, kind, tags, content, sig });
}
parentPort.postMessage(events);

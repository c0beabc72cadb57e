/**
 * A signing thread for the workload. BIP-340 signatures through tiny-secp256k1 (libsecp256k1 compiled to WASM, the
 * library the relay verifies with) cost about a third of nostr-tools' pure-JS signer; even so, at 200 events/s they
 * are too much for the runner's own event loop, which must keep its timers and probes on time.
 */
import { parentPort } from 'node:worker_threads';
import * as ecc from 'tiny-secp256k1';
import { getEventHash, getPublicKey } from 'nostr-tools/pure';
import { bytesToHex, hexToBytes } from 'nostr-tools/utils';

interface Job {
  id: number;
  key: string;
  template: { kind: number; created_at: number; tags: string[][]; content: string };
}

const pubkeys = new Map<string, string>();

parentPort!.on('message', (jobs: Job[]) => {
  parentPort!.postMessage(
    jobs.map((j) => {
      const key = hexToBytes(j.key);
      let pubkey = pubkeys.get(j.key);
      if (pubkey === undefined) {
        pubkey = getPublicKey(key);
        if (pubkeys.size < 10_000) pubkeys.set(j.key, pubkey);
      }
      const unsigned = { ...j.template, pubkey };
      const id = getEventHash(unsigned);
      return { id: j.id, event: { ...unsigned, id, sig: bytesToHex(ecc.signSchnorr(hexToBytes(id), key)) } };
    }),
  );
});

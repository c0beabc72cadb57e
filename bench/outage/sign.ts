import { randomBytes } from 'node:crypto';
import { signSchnorr, xOnlyPointFromScalar } from 'tiny-secp256k1';
import { computeEventId, type NostrEvent } from '../../relay/src/nostr/event.js';

/**
 * Signs kind-1 events with tiny-secp256k1 (libsecp256k1 in WASM): tens of thousands a second, so a 20k-event run
 * spends its time in the relay rather than in the client. Ids come from the relay's NIP-01 serialization; the relay
 * verifies every signature, so a wrong one would show up as OK false.
 */
export function signEvents(count: number, label: string, authors = 20): NostrEvent[] {
  const keys = Array.from({ length: authors }, () => {
    for (;;) {
      const d = randomBytes(32);
      const x = xOnlyPointFromScalar(d);
      if (x) return { d, pubkey: Buffer.from(x).toString('hex') };
    }
  });
  const nonce = randomBytes(6).toString('hex');
  const createdAt = Math.floor(Date.now() / 1000);
  const out: NostrEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const key = keys[i % keys.length]!;
    const base = { pubkey: key.pubkey, created_at: createdAt, kind: 1, tags: [['t', 'outage-bench']], content: `${label} ${nonce} #${i} ${'x'.repeat(80)}` };
    const id = computeEventId(base);
    const sig = Buffer.from(signSchnorr(Buffer.from(id, 'hex'), key.d, randomBytes(32))).toString('hex');
    out[i] = { id, ...base, sig };
  }
  return out;
}

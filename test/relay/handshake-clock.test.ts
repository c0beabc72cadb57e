// The peer handshake's clock bound, shared by NIP-42 AUTH answers (peer-auth.ts) and PEER-PROOFs (peer-proof.ts):
// signed events more than MAX_CLOCK_SKEW_SECONDS from our clock, either way, are refused; fresh ones pass.
import t from 'tap';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { nobleVerifySync } from '../../relay/src/crypto/noble-verifier.js';
import { MAX_CLOCK_SKEW_SECONDS, tooFarFromNow } from '../../relay/src/peers/peer-auth.js';
import { PROOF_KIND, checkProof } from '../../relay/src/peers/peer-proof.js';

const nonce = 'ab'.repeat(32);
const url = 'ws://relay-b.example:7777';
const verify = async (id: string, pubkey: string, sig: string) => nobleVerifySync(id, pubkey, sig);

function proofAt(createdAt: number) {
  return finalizeEvent({ kind: PROOF_KIND, created_at: createdAt, tags: [['challenge', nonce], ['relay', url]], content: '' }, generateSecretKey());
}

t.test('tooFarFromNow: inside the bound passes, outside either way fails, non-numbers fail', async (t) => {
  const now = 1_800_000_000_000;
  const s = now / 1000;
  t.equal(MAX_CLOCK_SKEW_SECONDS, 600);
  t.notOk(tooFarFromNow(s, now));
  t.notOk(tooFarFromNow(s - MAX_CLOCK_SKEW_SECONDS, now), 'exactly at the bound (past)');
  t.notOk(tooFarFromNow(s + MAX_CLOCK_SKEW_SECONDS, now), 'exactly at the bound (future)');
  t.ok(tooFarFromNow(s - MAX_CLOCK_SKEW_SECONDS - 1, now), 'one second too old');
  t.ok(tooFarFromNow(s + MAX_CLOCK_SKEW_SECONDS + 1, now), 'one second too far ahead');
  t.ok(tooFarFromNow(Number.NaN, now), 'NaN');
});

t.test('checkProof refuses a stale or future proof and accepts a fresh one', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  t.same(await checkProof(proofAt(now - 700), nonce, url, verify), { error: 'proof created_at is too far from now' }, '700 s old');
  t.same(await checkProof(proofAt(now + 700), nonce, url, verify), { error: 'proof created_at is too far from now' }, '700 s ahead');
  const fresh = proofAt(now);
  t.same(await checkProof(fresh, nonce, url, verify), { nodeId: fresh.pubkey }, 'fresh');
});

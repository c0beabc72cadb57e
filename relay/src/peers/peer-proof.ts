import { randomBytes } from 'node:crypto';
import type { NodeKey } from '../identity/node-key.js';
import { computeEventId, eventShapeError, firstTagValue, type NostrEvent } from '../nostr/event.js';
import type { MessageHandler } from '../server/connection.js';
import { normalizeRelayUrl, tooFarFromNow } from './peer-auth.js';

/**
 * Mutual authentication of an outbound link: the relay we dial proves its node id before anything is attributed
 * to it. We send `["PEER-PROVE", <nonce>, <the URL we dialled>]`; it answers `["PEER-PROOF", <event>]`, an event
 * of kind PROOF_KIND signed by its node key with tags `challenge` = our nonce and `relay` = that URL. It signs only
 * URLs that name itself (public_url, its aliases, its listen URL), so a relay we dialled cannot pass off another
 * relay's proof as its own: the proof would name the other relay's URL, not the one we dialled.
 *
 * A kind of its own (not NIP-42's 22242): a proof can never be replayed as an AUTH answer.
 */
export const PROOF_KIND = 22250;
const NONCE = /^[0-9a-f]{32,128}$/;
const ANSWERED = 'peer-proof.answered';

/** Answers one PEER-PROVE per connection (each costs a signature), for any connection: proving who we are is harmless. */
export function peerProveHandler(nodeKey: NodeKey, ourUrls: () => string[]): MessageHandler {
  return (connection, message) => {
    const [, nonce, url] = message;
    if (connection.attributes.has(ANSWERED)) {
      connection.notice('invalid: PEER-PROVE is answered once per connection');
      return;
    }
    if (typeof nonce !== 'string' || !NONCE.test(nonce) || typeof url !== 'string' || url.length > 2048) {
      connection.notice('invalid: PEER-PROVE needs a hex nonce (32-128 characters) and a relay URL');
      return;
    }
    const mine = ourUrls().map(normalizeRelayUrl);
    if (!mine.includes(normalizeRelayUrl(url))) {
      connection.notice(`invalid: PEER-PROVE names ${url.slice(0, 200)}, which is not this relay`);
      return;
    }
    connection.attributes.set(ANSWERED, true);
    const proof = nodeKey.sign({ kind: PROOF_KIND, created_at: Math.floor(Date.now() / 1000), tags: [['challenge', nonce], ['relay', url]], content: '' });
    connection.send(JSON.stringify(['PEER-PROOF', proof]));
  };
}

/** Checks a PEER-PROOF answer to our nonce for the URL we dialled; resolves with the proven node id or an error. */
export async function checkProof(
  candidate: unknown,
  nonce: string,
  dialledUrl: string,
  verify: (id: string, pubkey: string, sig: string) => Promise<boolean>,
): Promise<{ nodeId: string } | { error: string }> {
  const shapeError = eventShapeError(candidate);
  if (shapeError) return { error: `malformed proof: ${shapeError}` };
  const event = candidate as NostrEvent;
  if (event.kind !== PROOF_KIND) return { error: `proof is not of kind ${PROOF_KIND}` };
  if (firstTagValue(event, 'challenge') !== nonce) return { error: 'proof answers another challenge' };
  const relay = firstTagValue(event, 'relay');
  if (!relay || normalizeRelayUrl(relay) !== normalizeRelayUrl(dialledUrl)) return { error: 'proof names another relay URL' };
  if (tooFarFromNow(event.created_at)) return { error: 'proof created_at is too far from now' };
  if (computeEventId(event) !== event.id || !(await verify(event.id, event.pubkey, event.sig))) return { error: 'proof signature does not verify' };
  return { nodeId: event.pubkey };
}

/**
 * Our side of the exchange on a link we dialled: sends PEER-PROVE with a fresh nonce bound to the URL we dialled
 * and checks the PEER-PROOF that comes back (`register` installs the link's one-shot waiter for it; the link
 * settles it with undefined when the connection is lost). `missing`: no answer in time.
 */
export async function requestProof(
  dialledUrl: string,
  timeoutMs: number,
  send: (frame: string) => boolean,
  register: (waiter: ((event: unknown) => void) | undefined) => void,
  verify: (id: string, pubkey: string, sig: string) => Promise<boolean>,
): Promise<{ nodeId: string } | { error: string; missing: boolean }> {
  const nonce = randomBytes(32).toString('hex');
  const answer = await new Promise<unknown>((resolve) => {
    const timer = setTimeout(() => {
      register(undefined);
      resolve(undefined);
    }, timeoutMs);
    register((event) => {
      clearTimeout(timer);
      resolve(event);
    });
    if (!send(JSON.stringify(['PEER-PROVE', nonce, dialledUrl]))) {
      clearTimeout(timer);
      register(undefined);
      resolve(undefined);
    }
  });
  if (answer === undefined) return { error: 'no PEER-PROOF', missing: true };
  const result = await checkProof(answer, nonce, dialledUrl, verify);
  return 'error' in result ? { error: result.error, missing: false } : result;
}

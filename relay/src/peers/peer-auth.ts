import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SignatureVerifier } from '../crypto/types.js';
import { computeEventId, eventShapeError, firstTagValue, type NostrEvent } from '../nostr/event.js';
import type { ClientConnection, MessageHandler } from '../server/connection.js';
import { okFrame } from '../server/messages.js';
import { AUTH_KIND } from './peer-link.js';

const CHALLENGE = 'nip42.challenge';
/** The pubkey a connection authenticated as (NIP-42), peer or not. */
export const AUTHED_PUBKEY = 'nip42.pubkey';
/** AUTH events older or newer than this are refused (NIP-42 suggests about ten minutes). */
const MAX_CLOCK_SKEW_SECONDS = 600;

export interface PeerAuthOptions {
  verifier: SignatureVerifier;
  /** URLs the `relay` tag may name; empty: any (no public URL configured). */
  acceptedRelayUrls: () => string[];
  isBanned: (nodeId: string) => boolean;
  logger: Logger;
  /** A peer relay authenticated on this connection; `url` is where it says it can be reached. */
  onPeerAuthenticated: (connection: ClientConnection, nodeId: string, url: string | undefined) => void;
}

/** ws://Host:80/ and ws://host are the same relay: compare URLs in one normal form. */
export function normalizeRelayUrl(url: string): string {
  try {
    const u = new URL(url);
    const defaultPort = u.protocol === 'wss:' ? '443' : '80';
    return `${u.protocol}//${u.hostname.toLowerCase()}:${u.port || defaultPort}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url;
  }
}

/**
 * NIP-42 on the client port: every connection gets a challenge; an AUTH answer signed by any key is checked
 * (kind, challenge, relay tag, clock, id, signature). The key that signed it is a node id: the connection then
 * speaks for that node (`connection.source` becomes a peer source), so everything it sends is attributed to the
 * node, and bans and reputation attach to the node id rather than an address. An optional `peer` tag carries
 * the URL the node can be reached at (used for discovery).
 *
 * Relay-tag rule: through a proxy the URL a peer dials is not our listen address. The tag must name our
 * `public_url` or our direct listen URL; with no public URL configured any ws(s) URL is accepted (the
 * per-connection random challenge still prevents replay elsewhere).
 */
export function attachPeerAuth(options: PeerAuthOptions): { onConnected: (c: ClientConnection) => void; handler: MessageHandler } {
  const log = options.logger.child({ component: 'peer-auth' });
  return {
    onConnected: (connection) => {
      const challenge = randomBytes(16).toString('hex');
      connection.attributes.set(CHALLENGE, challenge);
      connection.send(JSON.stringify(['AUTH', challenge]));
    },
    handler: async (connection, message) => {
      const event = message[1] as NostrEvent;
      const id = typeof (event as { id?: unknown } | undefined)?.id === 'string' ? event.id : '';
      const refuse = (reason: string) => connection.send(okFrame(id, false, reason));
      const shapeError = eventShapeError(event);
      if (shapeError) return refuse('invalid: ' + shapeError);
      if (event.kind !== AUTH_KIND) return refuse(`invalid: AUTH needs a kind ${AUTH_KIND} event`);
      if (firstTagValue(event, 'challenge') !== connection.attributes.get(CHALLENGE)) return refuse('auth-required: challenge does not match');
      const relayTag = firstTagValue(event, 'relay');
      if (!relayTag || !/^wss?:\/\//i.test(relayTag)) return refuse('invalid: relay tag missing');
      const accepted = options.acceptedRelayUrls().map(normalizeRelayUrl);
      if (accepted.length > 0 && !accepted.includes(normalizeRelayUrl(relayTag))) return refuse(`invalid: relay tag ${relayTag} does not name this relay`);
      if (Math.abs(event.created_at - Date.now() / 1000) > MAX_CLOCK_SKEW_SECONDS) return refuse('invalid: created_at is too far from now');
      if (computeEventId(event) !== event.id || !(await options.verifier.verify(event.id, event.pubkey, event.sig))) {
        log.warn({ pubkey: event.pubkey, address: connection.address }, 'AUTH signature verification failed');
        return refuse('invalid: bad signature');
      }
      if (options.isBanned(event.pubkey)) {
        log.warn({ nodeId: event.pubkey, address: connection.address }, 'banned peer refused');
        refuse('blocked: banned');
        connection.close(1008, 'banned');
        return;
      }
      const peerUrl = firstTagValue(event, 'peer');
      connection.attributes.delete(CHALLENGE);
      connection.attributes.set(AUTHED_PUBKEY, event.pubkey);
      connection.source = { kind: 'peer', nodeId: event.pubkey, url: peerUrl || connection.address, connectionId: connection.id };
      options.onPeerAuthenticated(connection, event.pubkey, peerUrl && /^wss?:\/\//i.test(peerUrl) ? peerUrl : undefined);
      connection.send(okFrame(event.id, true, ''));
    },
  };
}

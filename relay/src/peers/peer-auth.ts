import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SignatureVerifier } from '../crypto/types.js';
import { computeEventId, eventShapeError, firstTagValue, type NostrEvent } from '../nostr/event.js';
import type { PeerAllowList } from '../security/peer-allow-list.js';
import type { ClientConnection, MessageHandler } from '../server/connection.js';
import { okFrame } from '../server/messages.js';
import { AUTH_KIND } from './peer-link-auth.js';

const CHALLENGE = 'nip42.challenge';
/** The pubkey a connection authenticated as (NIP-42), peer or not. */
export const AUTHED_PUBKEY = 'nip42.pubkey';
/** AUTH answers and PEER-PROOFs older or newer than this are refused (NIP-42 suggests about ten minutes). */
export const MAX_CLOCK_SKEW_SECONDS = 600;

/** Whether a signed handshake event's created_at is too far from our clock (either way) to be accepted. */
export function tooFarFromNow(createdAt: number, nowMs = Date.now()): boolean {
  return !(Math.abs(createdAt - nowMs / 1000) <= MAX_CLOCK_SKEW_SECONDS);
}
/** The OK message of an AUTH accepted for a client (the key is not an allowed peer): a dialling relay reads it. */
export const CLIENT_ROLE_MESSAGE = 'auth: authenticated as a client; this key is not an allowed peer node';

/** An AUTH from an unknown key waits at most this long for a configured link to prove it (startup races). */
const ROLE_WAIT_MS = 5000;
const ROLE_FIXED = 'blocked: this connection has already authenticated as a peer; its role is fixed';

/** A proven peer's connection never authenticates again; a client's may, as another client key (NIP-70). */
function peerRoleFixed(connection: ClientConnection): boolean {
  return connection.roleDecided && connection.source.kind === 'peer';
}
const PENDING = 'nip42.pending';

export interface PeerAuthOptions {
  verifier: SignatureVerifier;
  /** URLs the `relay` tag may name: our public_url, its aliases and our direct listen URL (empty: any). */
  acceptedRelayUrls: () => string[];
  isBanned: (nodeId: string) => boolean;
  allowList: PeerAllowList;
  logger: Logger;
  /** Counts AUTH outcomes: peer, client, refused. */
  count?: (outcome: 'peer' | 'client' | 'refused') => void;
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
 * NIP-42 on the client port: every connection gets one challenge, kept for its whole life. An AUTH answer is
 * checked (kind, this connection's challenge, relay tag naming *us*, clock, id, signature) and decides the
 * connection's role once:
 *
 * - **peer**, when the key is an allowed peer node (`peer_node_ids`, or proven by one of our configured peer
 *   links): everything it sends is then attributed to the node, and bans and reputation attach to the node id;
 * - **client** otherwise: the connection keeps its client source (address, connection, IP and author limits);
 *   the OK says so.
 *
 * The role never changes: a peer's second AUTH is refused, and so is an allowed peer key on a connection that
 * authenticated as a client; a client may AUTH again as another client key (NIP-42 allows it, NIP-70 needs it),
 * always with this connection's challenge. The optional `peer` tag carries the
 * URL a peer can be reached at (discovery, when enabled).
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
      const id = typeof (event as { id?: unknown } | undefined)?.id === 'string' ? event.id.slice(0, 64) : '';
      const refuse = (reason: string) => {
        options.count?.('refused');
        connection.send(okFrame(id, false, reason));
      };
      if (peerRoleFixed(connection) || connection.attributes.has(PENDING)) return refuse(ROLE_FIXED);
      const shapeError = eventShapeError(event);
      if (shapeError) return refuse('invalid: ' + shapeError);
      if (event.kind !== AUTH_KIND) return refuse(`invalid: AUTH needs a kind ${AUTH_KIND} event`);
      if (firstTagValue(event, 'challenge') !== connection.attributes.get(CHALLENGE)) return refuse('auth-required: challenge does not match');
      const relayTag = firstTagValue(event, 'relay');
      if (!relayTag || !/^wss?:\/\//i.test(relayTag)) return refuse('invalid: relay tag missing');
      const accepted = options.acceptedRelayUrls().map(normalizeRelayUrl);
      if (accepted.length > 0 && !accepted.includes(normalizeRelayUrl(relayTag))) return refuse(`invalid: relay tag ${relayTag.slice(0, 200)} does not name this relay`);
      if (tooFarFromNow(event.created_at)) return refuse('invalid: created_at is too far from now');
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
      if (peerRoleFixed(connection) || connection.attributes.has(PENDING)) return refuse(ROLE_FIXED);
      connection.attributes.set(PENDING, true);
      const peer = await options.allowList.allowsSoon(event.pubkey, ROLE_WAIT_MS);
      connection.attributes.delete(PENDING);
      if (peerRoleFixed(connection)) return refuse(ROLE_FIXED);
      // A connection that authenticated as a client stays one: an allowed peer key on it later is refused.
      if (connection.roleDecided && peer) return refuse('blocked: this connection authenticated as a client; a peer opens its own connection');
      connection.attributes.set(AUTHED_PUBKEY, event.pubkey);
      if (!peer) {
        connection.authenticateClient(event.pubkey);
        log.info({ pubkey: event.pubkey, address: connection.address }, 'client authenticated (not an allowed peer)');
        options.count?.('client');
        connection.send(okFrame(event.id, true, CLIENT_ROLE_MESSAGE));
        return;
      }
      const peerUrl = firstTagValue(event, 'peer');
      connection.decideRole({ kind: 'peer', nodeId: event.pubkey, url: peerUrl || connection.address, connectionId: connection.id });
      options.count?.('peer');
      options.onPeerAuthenticated(connection, event.pubkey, peerUrl && /^wss?:\/\//i.test(peerUrl) ? peerUrl : undefined);
      connection.send(okFrame(event.id, true, ''));
    },
  };
}

import type { Logger } from 'pino';
import type { NodeKey } from '../identity/node-key.js';
import type { OkResult } from './link-requests.js';
import { CLIENT_ROLE_MESSAGE } from './peer-auth.js';
import { requestProof } from './peer-proof.js';

/** NIP-42 kind. */
export const AUTH_KIND = 22242;
/** How long we wait for a relay's AUTH challenge before treating it as a relay that does not use NIP-42. */
const AUTH_CHALLENGE_WAIT_MS = 2000;

/** What the handshake reads and records on its link (PeerLink). */
export interface LinkAuthTarget {
  readonly url: string;
  readonly remoteIsOurs: boolean;
  remoteNodeId: string | null;
  identityProven: boolean;
  authenticated: boolean;
  lastError: string | null;
  send(frame: string): boolean;
  push(frame: string, id: string, timeoutMs: number): Promise<OkResult>;
  ban(reason: string): void;
}

export interface LinkAuthOptions {
  nodeKey: NodeKey;
  /** The URL we announce (the `peer` tag of our AUTH). */
  ourUrl: () => string;
  heartbeatTimeoutMs: number;
  isBanned: (nodeId: string) => boolean;
  verify: (id: string, pubkey: string, sig: string) => Promise<boolean>;
  /** The remote proved its node id; called before the link is marked up. */
  onProven: (nodeId: string) => void;
  onProofOutcome?: (outcome: 'proven' | 'missing' | 'refused') => void;
  log: Logger;
}

/** One dialled connection, as its handshake sees it. */
export interface AuthConnection {
  /** Closes this connection if it is still the link's. */
  close(code: number, reason: string): void;
  /** Whether this is still the link's connection: a stale connection's handshake goes no further. */
  isCurrent(): boolean;
  /** The handshake is done: the link may go up. */
  up(reason: string): void;
}

/** One connection's handshake: the link feeds it the socket's open, frames and close. */
export interface DialHandshake {
  opened(): void;
  /** Takes AUTH and PEER-PROOF frames (true); every other frame is the link's. */
  onFrame(frame: unknown[]): boolean;
  closed(): void;
}

/**
 * Mutual authentication of an outbound link. Our relays prove their node id first (PEER-PROVE, peer-proof.ts);
 * then we answer the AUTH challenge with our node key (NIP-42), or go up without one when none comes.
 */
export class LinkAuth {
  private proofWaiter: ((event: unknown) => void) | undefined;

  constructor(
    private readonly link: LinkAuthTarget,
    private readonly o: LinkAuthOptions,
  ) {}

  /** Starts the handshake of a connection just dialled. */
  dial(connection: AuthConnection): DialHandshake {
    let challengeTimer: NodeJS.Timeout | undefined;
    let proven = !this.link.remoteIsOurs;
    let challenge: string | undefined;
    let noChallenge = false;
    let answered = false;
    const proceed = () => {
      if (!proven || answered || !connection.isCurrent()) return;
      if (challenge !== undefined) {
        answered = true;
        this.authenticate(challenge, connection);
      } else if (noChallenge) {
        answered = true;
        connection.up('no AUTH challenge (relay without NIP-42)');
      }
    };
    return {
      opened: () => {
        // A relay that wants NIP-42 sends its challenge at once; one that does not is a plain peer.
        challengeTimer = setTimeout(() => {
          noChallenge = true;
          proceed();
        }, AUTH_CHALLENGE_WAIT_MS);
        if (this.link.remoteIsOurs) {
          void this.proveRemote().then((ok) => {
            if (!ok) {
              connection.close(1008, 'identity not proven');
              return;
            }
            proven = true;
            proceed();
          });
        }
      },
      onFrame: (frame) => {
        if (frame[0] === 'AUTH' && typeof frame[1] === 'string') {
          clearTimeout(challengeTimer);
          if (challenge === undefined) challenge = frame[1].slice(0, 256);
          proceed();
          return true;
        }
        if (frame[0] === 'PEER-PROOF') {
          const waiter = this.proofWaiter;
          this.proofWaiter = undefined;
          waiter?.(frame[1]);
          return true;
        }
        return false;
      },
      closed: () => clearTimeout(challengeTimer),
    };
  }

  /** The connection is gone: not authenticated any more, and a proof still awaited will not come. */
  linkLost(): void {
    this.link.authenticated = false;
    const proofWaiter = this.proofWaiter;
    this.proofWaiter = undefined;
    proofWaiter?.(undefined);
  }

  /**
   * Asks the remote to prove its node id (peer-proof.ts). On success the remote's node id is known for certain; a
   * different key than last time is a different node to us.
   */
  async proveRemote(): Promise<boolean> {
    const { link, o } = this;
    const timeoutMs = Math.max(5000, o.heartbeatTimeoutMs);
    const result = await requestProof(link.url, timeoutMs, (frame) => link.send(frame), (waiter) => (this.proofWaiter = waiter), o.verify);
    if ('error' in result) {
      link.lastError = result.missing ? 'the peer did not prove its node id (no PEER-PROOF)' : `the peer's identity proof was refused: ${result.error}`;
      o.log.warn({ reason: result.error }, result.missing ? link.lastError : 'peer identity proof refused');
      o.onProofOutcome?.(result.missing ? 'missing' : 'refused');
      return false;
    }
    if (link.remoteNodeId !== null && link.remoteNodeId !== result.nodeId) o.log.warn({ was: link.remoteNodeId, now: result.nodeId }, 'peer node id changed');
    link.remoteNodeId = result.nodeId;
    link.identityProven = true;
    o.onProofOutcome?.('proven');
    o.onProven(result.nodeId);
    if (o.isBanned(result.nodeId)) {
      link.ban('the node is banned');
      return false;
    }
    return true;
  }

  private authenticate(challenge: string, connection: AuthConnection): void {
    const { link, o } = this;
    const auth = o.nodeKey.sign({
      kind: AUTH_KIND,
      created_at: Math.floor(Date.now() / 1000),
      // relay: the URL we dialled (through a proxy it is the proxy's); peer: where the remote can reach us.
      tags: [['relay', link.url], ['challenge', challenge], ['peer', o.ourUrl()]],
      content: '',
    });
    // The first signature check of a fresh relay may wait for its verifier workers, and a relay whose own link to
    // us has not proven our node id yet waits up to 5 s before deciding our role: allow for both.
    void link.push(JSON.stringify(['AUTH', auth]), auth.id, Math.max(10_000, o.heartbeatTimeoutMs)).then((r) => {
      if (r.ok && r.message === CLIENT_ROLE_MESSAGE && link.remoteIsOurs) {
        // It does not (yet) know us as a peer: events we pushed would count as a client's. Retry with backoff;
        // once its own link to us has proven our node id, it accepts us.
        link.lastError = 'the peer accepted our AUTH only as a client (our node id is not on its allow-list)';
        o.log.warn(link.lastError);
        connection.close(1000, 'not accepted as a peer');
      } else if (r.ok) {
        link.authenticated = true;
        connection.up('authenticated');
      } else {
        link.lastError = `AUTH refused: ${r.message}`;
        o.log.warn({ reason: r.message }, 'peer refused our AUTH');
        connection.close(1000, 'auth refused');
      }
    });
  }
}

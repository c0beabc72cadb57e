/**
 * Who may talk to this relay. Subjects are peer node ids (hex pubkeys) or client IP addresses.
 * The peering layer asks `isBanned` before dialling or admitting a peer and listens for bans to cut
 * connections at once; the reputation layer decides bans and persists them.
 */
export interface AccessControl {
  isBanned(subject: string): boolean;
  onBanned(listener: (subject: string, reason: string) => void): void;
  onUnbanned(listener: (subject: string) => void): void;
  /** Resolves once stored bans are loaded; the relay awaits it before it listens (absent: nothing to load). */
  ready?(): Promise<void>;
  /**
   * Reports misbehaviour noticed outside the ingest pipeline (e.g. gossip whose signature fails in the peering
   * layer). Counts against the subject's reputation like invalid events do; absent: nobody keeps scores.
   */
  report?(subject: string, offence: 'signature' | 'id' | 'shape' | 'malformed' | 'rate-limit' | 'gossip'): void;
}

/** Nobody is banned: the default until the reputation layer installs its ban list. */
export class OpenAccess implements AccessControl {
  isBanned(): boolean {
    return false;
  }
  onBanned(): void {}
  onUnbanned(): void {}
}

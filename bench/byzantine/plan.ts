// What attacker.ts is asked to do and what it reports (a module of its own: attacker.ts runs when imported).

export const CLIENT_ATTACKS = ['req-flood', 'close-flood', 'neg-open-flood', 'event-flood', 'forged-flood', 'gossip-flood', 'auth-client-flood', 'conn-flood'] as const;
export const PEER_ATTACKS = ['peer-flood', 'peer-gossip', 'peer-forged', 'peer-big-frame'] as const;
export type Attack = (typeof CLIENT_ATTACKS)[number] | (typeof PEER_ATTACKS)[number];

export interface Plan {
  attack: Attack;
  url: string;
  seconds: number;
  localAddress?: string;
  /** Hex node key for peer attacks (allow-listed on the target). */
  secretKey?: string;
  /** conn-flood: connections to try. */
  connections?: number;
}

export interface AttackerReport {
  type: 'report';
  attack: Attack;
  sent: number;
  answers: Record<string, number>;
  auth: string | null;
  firstRefusalMs: number | null;
  closedMs: number | null;
  closeCode: number | null;
  reconnect: string;
  /** conn-flood: connections opened and upgrade answers. */
  opened?: number;
  refusedUpgrades?: Record<string, number>;
}

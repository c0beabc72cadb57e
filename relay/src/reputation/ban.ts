import type { SubjectType } from '../security/subjects.js';

export type BanOrigin = 'auto' | 'manual' | 'import';

/** One ban. `expiresAt` null: permanent. `strikes` counts automatic bans so far (escalation). */
export interface Ban {
  subject: string;
  type: SubjectType;
  reason: string;
  origin: BanOrigin;
  bannedAt: number;
  expiresAt: number | null;
  strikes: number;
}

/** A ban as exported by GET /admin/bans and accepted by POST /admin/bans/import. */
export interface BanRecord {
  subject: string;
  /** Same as subject for peers: what the runbook and /admin/peers call it. */
  nodeId?: string;
  type: SubjectType;
  reason: string;
  origin: BanOrigin;
  bannedAt: string;
  expiresAt: string | null;
  strikes: number;
}

export function toRecord(ban: Ban): BanRecord {
  return {
    subject: ban.subject,
    ...(ban.type === 'peer' ? { nodeId: ban.subject } : {}),
    type: ban.type,
    reason: ban.reason,
    origin: ban.origin,
    bannedAt: new Date(ban.bannedAt).toISOString(),
    expiresAt: ban.expiresAt === null ? null : new Date(ban.expiresAt).toISOString(),
    strikes: ban.strikes,
  };
}

export function isActive(ban: Ban, now: number): boolean {
  return ban.expiresAt === null || ban.expiresAt > now;
}

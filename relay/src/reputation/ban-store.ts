import pg from 'pg';
import type { Logger } from 'pino';
import type { SubjectType } from '../security/subjects.js';
import type { Ban, BanOrigin } from './ban.js';

interface BanRow {
  subject: string;
  subject_type: SubjectType;
  reason: string;
  origin: BanOrigin;
  banned_at: Date;
  expires_at: Date | null;
  lifted_at: Date | null;
  strikes: number;
}

export interface StoredBans {
  /** Bans in force (not lifted, not expired). */
  active: Ban[];
  /** Automatic bans so far per subject, lifted and expired ones included, so escalation survives restarts. */
  strikes: Map<string, number>;
}

/**
 * Bans in PostgreSQL (table `bans`, created by migration 2 in storage/migrations.ts). A lifted ban keeps its
 * row (lifted_at set) so the strike count, and with it the escalation, is not forgotten.
 */
export class BanStore {
  private readonly pool: pg.Pool;

  constructor(databaseUrl: string, private readonly log: Logger) {
    // A small pool of its own: ban writes are rare and must not queue behind event batches.
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 2, connectionTimeoutMillis: 5000, statement_timeout: 5000 });
    this.pool.on('error', (err) => this.log.warn({ err }, 'idle PostgreSQL connection of the ban store failed'));
  }

  async load(now: number): Promise<StoredBans> {
    const { rows } = await this.pool.query<BanRow>('SELECT subject, subject_type, reason, origin, banned_at, expires_at, lifted_at, strikes FROM bans');
    const active: Ban[] = [];
    const strikes = new Map<string, number>();
    for (const row of rows) {
      strikes.set(row.subject, row.strikes);
      if (row.lifted_at !== null) continue;
      if (row.expires_at !== null && row.expires_at.getTime() <= now) continue;
      active.push({
        subject: row.subject,
        type: row.subject_type,
        reason: row.reason,
        origin: row.origin,
        bannedAt: row.banned_at.getTime(),
        expiresAt: row.expires_at === null ? null : row.expires_at.getTime(),
        strikes: row.strikes,
      });
    }
    return { active, strikes };
  }

  async save(ban: Ban): Promise<void> {
    await this.pool.query(
      `INSERT INTO bans (subject, subject_type, reason, origin, banned_at, expires_at, lifted_at, strikes)
       VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)
       ON CONFLICT (subject) DO UPDATE SET subject_type = EXCLUDED.subject_type, reason = EXCLUDED.reason,
         origin = EXCLUDED.origin, banned_at = EXCLUDED.banned_at, expires_at = EXCLUDED.expires_at,
         lifted_at = NULL, strikes = GREATEST(bans.strikes, EXCLUDED.strikes)`,
      [ban.subject, ban.type, ban.reason, ban.origin, new Date(ban.bannedAt), ban.expiresAt === null ? null : new Date(ban.expiresAt), ban.strikes],
    );
  }

  async lift(subject: string, at: number): Promise<void> {
    await this.pool.query('UPDATE bans SET lifted_at = $2 WHERE subject = $1 AND lifted_at IS NULL', [subject, new Date(at)]);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

import type { Logger } from 'pino';
import type { AccessControl } from '../security/access-control.js';
import { normalizeSubject, subjectTypeOf } from '../security/subjects.js';
import { isActive, type Ban, type BanOrigin, type BanRecord } from './ban.js';
import type { BanStore } from './ban-store.js';

export interface BanPolicy {
  /** Length of a first automatic ban, seconds. */
  baseSeconds: number;
  /** Each further automatic ban of the same subject lasts this many times longer... */
  escalation: number;
  /** ...up to this, seconds. */
  maxSeconds: number;
}

export interface BanRequest {
  reason: string;
  origin: BanOrigin;
  /** null: permanent. */
  durationSeconds: number | null;
}

/** How often expired bans are lifted and failed writes retried. */
const SWEEP_MS = 1000;

/**
 * The bans in force, answered from memory (isBanned runs on every upgrade, AUTH and dial), persisted to
 * PostgreSQL. A write that fails keeps the ban in force and is retried every sweep until PostgreSQL takes it.
 */
export class BanList implements AccessControl {
  private readonly bans = new Map<string, Ban>();
  private readonly strikes = new Map<string, number>();
  /** Subjects whose latest state has not reached PostgreSQL yet: the ban to save, or null to lift. */
  private readonly unsaved = new Map<string, Ban | null>();
  private readonly bannedListeners: Array<(subject: string, reason: string) => void> = [];
  private readonly unbannedListeners: Array<(subject: string) => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: BanStore,
    private readonly policy: BanPolicy,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads the stored bans; the relay waits for this before it listens. */
  async ready(): Promise<void> {
    const stored = await this.store.load(this.now());
    for (const [subject, strikes] of stored.strikes) this.strikes.set(subject, strikes);
    for (const ban of stored.active) this.bans.set(ban.subject, ban);
    this.log.info({ bans: stored.active.length }, 'bans loaded');
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  isBanned(subject: string): boolean {
    const ban = this.bans.get(normalizeSubject(subject));
    return ban !== undefined && isActive(ban, this.now());
  }

  get(subject: string): Ban | undefined {
    const ban = this.bans.get(normalizeSubject(subject));
    return ban && isActive(ban, this.now()) ? ban : undefined;
  }

  onBanned(listener: (subject: string, reason: string) => void): void {
    this.bannedListeners.push(listener);
  }

  onUnbanned(listener: (subject: string) => void): void {
    this.unbannedListeners.push(listener);
  }

  /** Bans in force, soonest to expire last (permanent ones at the end). */
  list(): Ban[] {
    const now = this.now();
    return [...this.bans.values()].filter((ban) => isActive(ban, now)).sort((a, b) => (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity));
  }

  /** An automatic ban: temporary, each repeat `escalation` times longer than the last. No-op if already banned. */
  autoBan(subject: string, reason: string): Ban | undefined {
    const key = normalizeSubject(subject);
    if (this.isBanned(key)) return undefined;
    const strikes = (this.strikes.get(key) ?? 0) + 1;
    const seconds = Math.min(this.policy.maxSeconds, this.policy.baseSeconds * this.policy.escalation ** (strikes - 1));
    this.strikes.set(key, strikes);
    return this.put(key, { reason, origin: 'auto', durationSeconds: seconds });
  }

  /** A manual or imported ban; replaces a ban in force (e.g. to make it permanent). */
  ban(subject: string, request: BanRequest): Ban {
    return this.put(normalizeSubject(subject), request);
  }

  /**
   * Ends a ban that has run out but not been swept yet, so the offence being scored now starts from the reset
   * score: the sweep runs every second, and offences scored in that gap would otherwise start from the
   * sub-threshold score, never cross the threshold again and so never escalate. Returns true if it lifted one.
   */
  liftIfExpired(subject: string): boolean {
    const key = normalizeSubject(subject);
    const ban = this.bans.get(key);
    if (!ban || isActive(ban, this.now())) return false;
    this.expire(key, ban);
    return true;
  }

  /** Lifts a ban; returns false if the subject was not banned. */
  unban(subject: string): boolean {
    const key = normalizeSubject(subject);
    const ban = this.bans.get(key);
    if (!ban) return false;
    if (!isActive(ban, this.now())) {
      this.expire(key, ban);
      return false;
    }
    this.bans.delete(key);
    this.unsaved.set(key, null);
    void this.flush();
    this.log.warn({ subject: key, ...(ban.type === 'peer' ? { nodeId: key } : { clientAddress: key }) }, 'ban lifted');
    this.emitUnbanned(key);
    return true;
  }

  /** Takes bans exported by another relay; expired ones and ones not lasting longer than a ban in force are skipped. */
  import(records: BanRecord[]): { imported: Ban[]; skipped: Array<{ subject: string; why: string }> } {
    const imported: Ban[] = [];
    const skipped: Array<{ subject: string; why: string }> = [];
    const now = this.now();
    for (const record of records) {
      const subject = normalizeSubject(record.subject ?? record.nodeId ?? '');
      const expiresAt = record.expiresAt === null || record.expiresAt === undefined ? null : Date.parse(record.expiresAt);
      if (expiresAt !== null && expiresAt <= now) {
        skipped.push({ subject, why: 'expired' });
        continue;
      }
      const current = this.get(subject);
      if (current && (current.expiresAt === null || (expiresAt !== null && expiresAt <= current.expiresAt))) {
        skipped.push({ subject, why: 'already banned at least as long' });
        continue;
      }
      const durationSeconds = expiresAt === null ? null : (expiresAt - now) / 1000;
      imported.push(this.put(subject, { reason: record.reason || 'imported', origin: 'import', durationSeconds }));
    }
    return { imported, skipped };
  }

  /** Resolves once every ban change so far is in PostgreSQL; rejects with the error if a write fails. */
  async persisted(): Promise<void> {
    await this.flush();
    if (this.unsaved.size > 0) await this.flushNow();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }

  private put(subject: string, request: BanRequest): Ban {
    if (!subject) throw new Error('empty ban subject');
    const now = this.now();
    const wasBanned = this.isBanned(subject);
    const ban: Ban = {
      subject,
      type: subjectTypeOf(subject),
      reason: request.reason,
      origin: request.origin,
      bannedAt: now,
      expiresAt: request.durationSeconds === null ? null : now + Math.round(request.durationSeconds * 1000),
      strikes: this.strikes.get(subject) ?? 0,
    };
    this.bans.set(subject, ban);
    this.unsaved.set(subject, ban);
    void this.flush();
    this.log.warn(
      {
        subject,
        ...(ban.type === 'peer' ? { nodeId: subject } : { clientAddress: subject }),
        reason: ban.reason,
        origin: ban.origin,
        expiresAt: ban.expiresAt === null ? 'never' : new Date(ban.expiresAt).toISOString(),
        strikes: ban.strikes,
      },
      ban.type === 'peer' ? 'peer banned' : 'client banned',
    );
    if (!wasBanned) {
      // isBanned() is true from here on; listeners (which close connections) run after the current I/O turn, so
      // the OK answering the event that caused the ban still reaches the sender before its link is closed.
      setImmediate(() => {
        for (const listener of this.bannedListeners) {
          try {
            listener(subject, ban.reason);
          } catch (err) {
            this.log.error({ err, subject }, 'ban listener failed');
          }
        }
      });
    }
    return ban;
  }

  private emitUnbanned(subject: string): void {
    for (const listener of this.unbannedListeners) {
      try {
        listener(subject);
      } catch (err) {
        this.log.error({ err, subject }, 'unban listener failed');
      }
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [subject, ban] of this.bans) if (!isActive(ban, now)) this.expire(subject, ban);
    if (this.unsaved.size > 0) void this.flush();
  }

  private expire(subject: string, ban: Ban): void {
    this.bans.delete(subject);
    this.log.info({ subject, ...(ban.type === 'peer' ? { nodeId: subject } : { clientAddress: subject }) }, 'ban expired');
    this.emitUnbanned(subject);
  }

  /** One flush at a time; errors are logged here (the ban stays in force and is retried next sweep). */
  private flush(): Promise<void> {
    this.flushing ??= this.flushNow()
      .catch((err: unknown) => this.log.error({ err, pending: this.unsaved.size }, 'could not store bans in PostgreSQL; retrying'))
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    for (const [subject, ban] of [...this.unsaved]) {
      if (ban) await this.store.save(ban);
      else await this.store.lift(subject, this.now());
      // Only forget the change if nothing newer replaced it while the write was in flight.
      if (this.unsaved.get(subject) === ban) this.unsaved.delete(subject);
    }
  }
}

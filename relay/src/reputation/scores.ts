import type { SubjectType } from '../security/subjects.js';
import { subjectTypeOf } from '../security/subjects.js';
import type { Offence } from './offences.js';

export const MAX_SCORE = 100;

export interface ScoreOptions {
  penalties: Record<Offence, number>;
  /** Points regained per minute without offences, up to MAX_SCORE. */
  recoveryPerMinute: number;
  /** A score at or below this bans the subject. */
  banThreshold: number;
}

interface Entry {
  score: number;
  /** When `score` was last brought up to date (recovery is applied lazily from here). */
  updatedAt: number;
  offences: Partial<Record<Offence, number>>;
  lastOffence: Offence | undefined;
  lastOffenceAt: number | undefined;
}

export interface ScoreView {
  subject: string;
  type: SubjectType;
  score: number;
  offences: Partial<Record<Offence, number>>;
  lastOffence: Offence | undefined;
  lastOffenceAt: string | undefined;
}

/**
 * Reputation per subject (peer node id or client IP): starts at 100, loses points per offence and regains them
 * slowly over time. Crossing the threshold fires `onThreshold` once; the ban list decides what follows.
 * Kept in memory: a restart forgives scores, not bans (those are in PostgreSQL).
 */
export class ScoreBoard {
  private readonly entries = new Map<string, Entry>();
  private readonly thresholdListeners: Array<(subject: string, offence: Offence, view: ScoreView) => void> = [];

  constructor(private readonly options: ScoreOptions, private readonly now: () => number = Date.now) {}

  get threshold(): number {
    return this.options.banThreshold;
  }

  onThreshold(listener: (subject: string, offence: Offence, view: ScoreView) => void): void {
    this.thresholdListeners.push(listener);
  }

  /** Takes the offence's points off the subject's score; returns the new score. */
  penalize(subject: string, offence: Offence): number {
    const now = this.now();
    const entry = this.current(subject, now) ?? { score: MAX_SCORE, updatedAt: now, offences: {}, lastOffence: undefined, lastOffenceAt: undefined };
    const before = entry.score;
    entry.score -= this.options.penalties[offence];
    entry.offences[offence] = (entry.offences[offence] ?? 0) + 1;
    entry.lastOffence = offence;
    entry.lastOffenceAt = now;
    this.entries.set(subject, entry);
    if (before > this.options.banThreshold && entry.score <= this.options.banThreshold) {
      const view = this.view(subject, entry);
      for (const listener of this.thresholdListeners) listener(subject, offence, view);
    }
    return entry.score;
  }

  score(subject: string): number {
    return this.current(subject, this.now())?.score ?? MAX_SCORE;
  }

  /** Forgets a subject (after a ban ends or is lifted: it starts afresh, escalation remembers repeats). */
  reset(subject: string): void {
    this.entries.delete(subject);
  }

  list(): ScoreView[] {
    const now = this.now();
    const views: ScoreView[] = [];
    for (const subject of [...this.entries.keys()]) {
      const entry = this.current(subject, now);
      if (entry) views.push(this.view(subject, entry));
    }
    return views.sort((a, b) => a.score - b.score);
  }

  /** Brings the entry up to date; an entry fully recovered with no recent offence is dropped to bound memory. */
  private current(subject: string, now: number): Entry | undefined {
    const entry = this.entries.get(subject);
    if (!entry) return undefined;
    const minutes = (now - entry.updatedAt) / 60_000;
    entry.score = Math.min(MAX_SCORE, entry.score + minutes * this.options.recoveryPerMinute);
    entry.updatedAt = now;
    if (entry.score >= MAX_SCORE && entry.lastOffenceAt !== undefined && now - entry.lastOffenceAt > 3_600_000) {
      this.entries.delete(subject);
      return undefined;
    }
    return entry;
  }

  private view(subject: string, entry: Entry): ScoreView {
    return {
      subject,
      type: subjectTypeOf(subject),
      score: Math.round(entry.score * 100) / 100,
      offences: { ...entry.offences },
      lastOffence: entry.lastOffence,
      lastOffenceAt: entry.lastOffenceAt === undefined ? undefined : new Date(entry.lastOffenceAt).toISOString(),
    };
  }
}

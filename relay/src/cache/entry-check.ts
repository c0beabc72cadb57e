import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { SignatureVerifier } from '../crypto/types.js';
import { computeEventId, eventShapeError, type NostrEvent } from '../nostr/event.js';
import type { StoredEvent } from '../storage/types.js';

/** Where a Redis value came from: the write buffer list, the recent-events cache, or a dedup mark. */
export type PoisonSource = 'write-buffer' | 'cache' | 'dedup-mark';
/** Why it was refused. */
export type PoisonReason = 'size' | 'json' | 'shape' | 'id' | 'signature' | 'mark';

export type EntryCheck = { ok: true; item: StoredEvent } | { ok: false; reason: PoisonReason; detail: string };

/** Bytes of a refused value kept in the log line and in the quarantine list. */
const LOG_BYTES = 256;
const QUARANTINE_BYTES = 4096;

/**
 * The cheap half of a client's checks, for a value read back from Redis: size, JSON, event shape, id hash. Redis is
 * a dependency, not a trusted peer: anything there may have been written by a bug, another tenant or an attacker.
 * The signature is checked separately (`verifyEntries`) so callers can batch it.
 */
export function checkEntry(raw: unknown, maxBytes: number, expectedId?: string): EntryCheck {
  if (typeof raw !== 'string') return { ok: false, reason: 'json', detail: 'not a string' };
  if (raw.length > maxBytes) return { ok: false, reason: 'size', detail: `${raw.length} characters (limit ${maxBytes})` };
  let event: unknown;
  try {
    event = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'json', detail: 'not JSON' };
  }
  const shape = eventShapeError(event);
  if (shape) return { ok: false, reason: 'shape', detail: shape };
  const ev = event as NostrEvent;
  if (computeEventId(ev) !== ev.id) return { ok: false, reason: 'id', detail: 'id does not match the event hash' };
  if (expectedId !== undefined && ev.id !== expectedId) return { ok: false, reason: 'id', detail: `stored under ${expectedId}` };
  return { ok: true, item: { event: ev, raw } };
}

/** Signature checks of entries that passed `checkEntry`, in one verifier round trip; returns which are good. */
export async function verifyEntries(verifier: SignatureVerifier, items: StoredEvent[]): Promise<boolean[]> {
  if (items.length === 0) return [];
  return verifier.verifyMany(items.map((i) => ({ id: i.event.id, pubkey: i.event.pubkey, sig: i.event.sig })));
}

export interface QuarantineOptions {
  redis: Redis;
  prefix: string;
  /** Most entries kept in the quarantine list (oldest dropped first). */
  maxEntries: number;
  counter: Counter;
  log: Logger;
}

/**
 * What happens to a bad value read from Redis: logged (truncated), counted in `relay_redis_poisoned_total`, and kept
 * for an operator in the bounded list `<prefix>quarantine` (JSON lines: source, reason, detail, at, raw truncated).
 * Never throws: a failure to record it is itself only logged.
 */
export class RedisQuarantine {
  readonly key: string;

  constructor(private readonly o: QuarantineOptions) {
    this.key = `${o.prefix}quarantine`;
  }

  note(source: PoisonSource, reason: PoisonReason, detail: string, raw: unknown, extra: Record<string, unknown> = {}): void {
    const text = typeof raw === 'string' ? raw : raw === null || raw === undefined ? String(raw) : JSON.stringify(raw);
    this.o.counter.inc({ source, reason });
    this.o.log.warn({ source, reason, detail, bytes: text.length, raw: text.slice(0, LOG_BYTES), ...extra }, 'redis entry quarantined');
    if (this.o.maxEntries <= 0) return; // counted and logged only
    const record = JSON.stringify({ source, reason, detail, at: new Date().toISOString(), bytes: text.length, raw: text.slice(0, QUARANTINE_BYTES), ...extra });
    this.o.redis
      .multi()
      .rpush(this.key, record)
      .ltrim(this.key, -this.o.maxEntries, -1)
      .exec()
      .catch((err: unknown) => this.o.log.warn({ err }, 'could not record a quarantined Redis entry'));
  }
}

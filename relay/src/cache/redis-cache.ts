import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/schema.js';
import type { NostrEvent } from '../nostr/event.js';
import { compareNewestFirst, filterIsEmpty, matchFilter, type Filter } from '../nostr/filter.js';
import { DELETION_KIND, dTag, isExpired, kindClass } from '../nostr/kinds.js';
import type { EventCache, StoredEvent } from '../storage/types.js';
import { checkEntry, type PoisonReason, type PoisonSource } from './entry-check.js';

/** Told about every bad value read back from Redis (see RedisQuarantine). */
export type PoisonSink = (source: PoisonSource, reason: PoisonReason, detail: string, raw: unknown, extra?: Record<string, unknown>) => void;

export type RedisCacheConfig = Pick<RelayConfig, 'redisUrl' | 'redisKeyPrefix' | 'dedupTtlSeconds' | 'cacheRecentEvents'>;

export interface RedisCacheExtras {
  /** Clock in seconds (expiration checks). */
  now?: () => number;
  /** Extra ioredis options (tests shorten timeouts). */
  redis?: RedisOptions;
}

/** Redis failure surfaced to callers: the relay degrades on it, it is never a verdict on an event. */
export class CacheError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CacheError';
  }
}

/**
 * Adds events to the recent set, each unless a newer version of its address is cached, dropping the version it
 * replaces, then trims the set to its bound. Atomic, so relays sharing a Redis cannot leave two versions behind;
 * one call for a whole batch (a command per event cost a third of ingest: docs/PERFORMANCE.md).
 * KEYS: recent zset, raw hash, address hash. ARGV: bound, then per event: id, created_at, raw, address ('' if none).
 */
const REMEMBER_LUA = `
local bound = tonumber(ARGV[1])
local stored = 0
for i = 2, #ARGV, 4 do
  local id, ca, raw, addr = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local keep = true
  if addr ~= '' then
    local old = redis.call('HGET', KEYS[3], addr)
    if old and old ~= id then
      local oldCa = redis.call('ZSCORE', KEYS[1], old)
      if oldCa then
        oldCa = tonumber(oldCa)
        if oldCa > ca or (oldCa == ca and old < id) then
          keep = false
        else
          redis.call('ZREM', KEYS[1], old)
          redis.call('HDEL', KEYS[2], old)
        end
      end
    end
    if keep then redis.call('HSET', KEYS[3], addr, id) end
  end
  if keep then
    redis.call('ZADD', KEYS[1], ca, id)
    redis.call('HSET', KEYS[2], id, raw)
    stored = stored + 1
  end
end
local excess = redis.call('ZCARD', KEYS[1]) - bound
if excess > 0 then
  local gone = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
  -- unpack() is limited to a few thousand values; a lowered bound can leave far more to drop at once.
  for i = 1, #gone, 1000 do
    redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 999, #gone)))
  end
end
return stored
`;

/** Dedup marks for a batch in one call. KEYS: the marks' keys. ARGV: ttl seconds, then each mark's value. */
const MARK_LUA = `
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl) end
return #KEYS
`;

/** Events per script call: keeps each call's arguments and its time inside Redis small. */
const SCRIPT_BATCH = 500;

const PAGE = 500;

/**
 * Dedup marks (SET EX per id, read back with one MGET) and a bounded cache of recent events: a sorted set of ids
 * by created_at plus a hash of their raw JSON. Filters are applied in memory on pages read newest first.
 */
export class RedisEventCache implements EventCache {
  readonly redis: Redis;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly ttl: number;
  private readonly bound: number;
  private readonly now: () => number;
  private readonly kRecent: string;
  private readonly kRaw: string;
  private readonly kAddr: string;
  private markKey: Buffer = randomBytes(32);
  /** Where bad values found in Redis are reported (the relay sets its quarantine here); default: dropped silently. */
  onPoison: PoisonSink = () => undefined;
  /** Longest cached event accepted back (the relay sets its max_message_length). */
  maxEntryBytes = 1 << 20;

  constructor(config: RedisCacheConfig, logger: Logger, extras: RedisCacheExtras = {}) {
    this.log = logger;
    this.prefix = config.redisKeyPrefix;
    // Seconds: SET ... EX takes seconds (nostream passed milliseconds here and kept marks 1000x too long).
    this.ttl = Math.max(1, Math.round(config.dedupTtlSeconds));
    this.bound = Math.max(1, config.cacheRecentEvents);
    this.now = extras.now ?? (() => Math.floor(Date.now() / 1000));
    this.kRecent = `${this.prefix}recent`;
    this.kRaw = `${this.prefix}recent:raw`;
    this.kAddr = `${this.prefix}recent:addr`;
    this.redis = new Redis(config.redisUrl, {
      // Fail fast while Redis is away (the relay then runs degraded) instead of queueing commands forever;
      // reconnection keeps going in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
      ...extras.redis,
    });
    this.redis.on('error', (err: Error) => this.log.warn({ err }, 'Redis connection error'));
    this.redis.defineCommand('nostrRemember', { numberOfKeys: 3, lua: REMEMBER_LUA });
    this.redis.defineCommand('nostrMark', { lua: MARK_LUA });
  }

  /** Resolves once connected (or rejects after timeoutMs); commands before that fail fast. */
  async waitReady(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        reject(new CacheError(`Redis not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.redis.once('ready', onReady);
    });
  }

  private fail(what: string, err: unknown): CacheError {
    return new CacheError(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  private seenKey(id: string): string {
    return `${this.prefix}seen:${id}`;
  }

  /**
   * Key of the dedup marks' MAC. A mark says "this id is stored" and makes the relay answer `duplicate` without
   * asking PostgreSQL, so a mark must prove this relay wrote it: its value is an HMAC of the id, and a mark that
   * does not carry the right one (written by anyone else, or under another key) is ignored and removed.
   */
  setMarkKey(key: Buffer): void {
    this.markKey = key;
  }

  private markValue(id: string): string {
    return 'm1:' + createHmac('sha256', this.markKey).update(id).digest('hex').slice(0, 32);
  }

  private validMark(id: string, value: string): boolean {
    const want = Buffer.from(this.markValue(id));
    const got = Buffer.from(value);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /** Drops cached events (a bad value found in the cache). Best effort: a failure only leaves them to be refused again. */
  forget(ids: string[]): void {
    if (ids.length === 0) return;
    this.redis
      .multi()
      .zrem(this.kRecent, ...ids)
      .hdel(this.kRaw, ...ids)
      .exec()
      .catch((err: unknown) => this.log.warn({ err }, 'could not drop bad cache entries'));
  }

  async seen(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    let values: (string | null)[];
    try {
      values = await this.redis.mget(ids.map((id) => this.seenKey(id)));
    } catch (err) {
      throw this.fail('dedup check failed', err);
    }
    const out = new Set<string>();
    const bad: string[] = [];
    values.forEach((v, i) => {
      if (v === null) return;
      const id = ids[i]!;
      if (this.validMark(id, v)) out.add(id);
      else {
        bad.push(this.seenKey(id));
        this.onPoison('dedup-mark', 'mark', 'dedup mark without this relay\'s MAC', v, { id });
      }
    });
    // A false "not seen" is always safe (PostgreSQL and its unique key decide); a false "seen" would lose the event.
    if (bad.length > 0) this.redis.del(...bad).catch((err: unknown) => this.log.warn({ err }, 'could not drop bad dedup marks'));
    return out;
  }

  async markSeen(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const p = this.redis.pipeline();
    for (let i = 0; i < ids.length; i += SCRIPT_BATCH) {
      const chunk = ids.slice(i, i + SCRIPT_BATCH);
      (p as unknown as { nostrMark(...args: (string | number)[]): void }).nostrMark(
        chunk.length, ...chunk.map((id) => this.seenKey(id)), this.ttl, ...chunk.map((id) => this.markValue(id)),
      );
    }
    await this.execPipeline(p, 'dedup mark failed');
  }

  private async execPipeline(p: ReturnType<Redis['pipeline']>, what: string): Promise<unknown[]> {
    let res: [Error | null, unknown][] | null;
    try {
      res = await p.exec();
    } catch (err) {
      throw this.fail(what, err);
    }
    if (res === null) throw new CacheError(`${what}: pipeline discarded`);
    const firstErr = res.find(([e]) => e !== null)?.[0];
    if (firstErr) throw this.fail(what, firstErr);
    return res.map(([, v]) => v);
  }

  async remember(items: StoredEvent[]): Promise<void> {
    if (items.length === 0) return;
    const p = this.redis.pipeline();
    for (let i = 0; i < items.length; i += SCRIPT_BATCH) {
      const args: (string | number)[] = [this.kRecent, this.kRaw, this.kAddr, this.bound];
      for (const { event: ev, raw } of items.slice(i, i + SCRIPT_BATCH)) {
        const cls = kindClass(ev.kind);
        const address = cls === 'replaceable' || cls === 'addressable' ? `${ev.kind}:${ev.pubkey}:${cls === 'addressable' ? dTag(ev) : ''}` : '';
        args.push(ev.id, ev.created_at, raw, address);
      }
      (p as unknown as { nostrRemember(...args: (string | number)[]): void }).nostrRemember(...args);
    }
    await this.execPipeline(p, 'caching recent events failed');
    const deletions = items.filter((i) => i.event.kind === DELETION_KIND);
    if (deletions.length > 0) await this.applyDeletions(deletions.map((d) => d.event));
  }

  /** Drops cached events a NIP-09 deletion removes (same author only), as the store does. */
  private async applyDeletions(deletions: NostrEvent[]): Promise<void> {
    const eTargets = new Map<string, NostrEvent>();
    const aTargets: { address: string; del: NostrEvent }[] = [];
    for (const del of deletions) {
      for (const t of del.tags) {
        if (t[0] === 'e' && t[1]) eTargets.set(t[1], del);
        if (t[0] === 'a' && t[1]) aTargets.push({ address: t[1], del });
      }
    }
    const doomed = new Set<string>();
    // Forgetting a dedup mark is always safe (the next check asks PostgreSQL), so drop the marks of every
    // e-tagged id: a deleted event's re-submission must be refused, not answered "duplicate".
    if (eTargets.size > 0) await this.execPipeline(this.redis.pipeline().del(...[...eTargets.keys()].map((id) => this.seenKey(id))), 'dropping dedup marks failed');
    try {
      const aIds = aTargets.length > 0 ? await this.redis.hmget(this.kAddr, ...aTargets.map((a) => a.address)) : [];
      aIds.forEach((id, i) => {
        if (id) eTargets.set(id, { ...aTargets[i]!.del, kind: -1 });
      });
      const ids = [...eTargets.keys()];
      const raws = ids.length > 0 ? await this.redis.hmget(this.kRaw, ...ids) : [];
      raws.forEach((raw, i) => {
        if (!raw) return;
        const checked = this.checkCached(raw, ids[i]!);
        if (!checked) return;
        const target = checked.event;
        const del = eTargets.get(ids[i]!)!;
        const byAddress = del.kind === -1;
        if (target.pubkey !== del.pubkey || target.kind === DELETION_KIND) return;
        if (byAddress && target.created_at > del.created_at) return;
        doomed.add(target.id);
      });
    } catch (err) {
      throw this.fail('applying a deletion to the cache failed', err);
    }
    if (doomed.size > 0) {
      await this.execPipeline(this.redis.multi().zrem(this.kRecent, ...doomed).hdel(this.kRaw, ...doomed), 'applying a deletion to the cache failed');
    }
  }

  async query(filters: Filter[]): Promise<StoredEvent[]> {
    const now = this.now();
    const byId = new Map<string, StoredEvent>();
    try {
      for (const f of filters) {
        if (f.limit === 0 || filterIsEmpty(f)) continue;
        for (const item of await this.queryOne(f, now)) if (!byId.has(item.event.id)) byId.set(item.event.id, item);
      }
    } catch (err) {
      throw err instanceof CacheError ? err : this.fail('cache query failed', err);
    }
    return [...byId.values()].sort((a, b) => compareNewestFirst(a.event, b.event));
  }

  private async queryOne(f: Filter, now: number): Promise<StoredEvent[]> {
    const limit = f.limit ?? this.bound;
    const matches: StoredEvent[] = [];
    const consider = (raws: (string | null)[], ids: string[]): void => {
      raws.forEach((raw, i) => {
        if (raw === null) return; // trimmed between the range read and the hash read
        const item = this.checkCached(raw, ids[i]!);
        if (item && matchFilter(f, item.event) && !isExpired(item.event, now)) matches.push(item);
      });
    };
    if (f.ids) {
      consider(await this.redis.hmget(this.kRaw, ...f.ids), f.ids);
    } else {
      const max = f.until === undefined ? '+inf' : String(f.until);
      const min = f.since === undefined ? '-inf' : String(f.since);
      // Read newest first; once `limit` matches are in, keep reading only while created_at still ties the
      // oldest match, so the lowest-id tie-break can pick among all of them.
      let offset = 0;
      let boundary: number | undefined;
      for (;;) {
        const page = await this.redis.zrevrangebyscore(this.kRecent, max, min, 'WITHSCORES', 'LIMIT', offset, PAGE);
        if (page.length === 0) break;
        offset += page.length / 2;
        const ids: string[] = [];
        let lowest = Infinity;
        for (let i = 0; i < page.length; i += 2) {
          const score = Number(page[i + 1]);
          if (boundary !== undefined && score < boundary) break;
          ids.push(page[i]!);
          lowest = Math.min(lowest, score);
        }
        if (ids.length > 0) consider(await this.redis.hmget(this.kRaw, ...ids), ids);
        if (matches.length >= limit) {
          matches.sort((a, b) => compareNewestFirst(a.event, b.event));
          boundary = matches[limit - 1]!.event.created_at;
          if (lowest < boundary) break;
        }
        if (page.length / 2 < PAGE) break;
      }
    }
    return matches.sort((a, b) => compareNewestFirst(a.event, b.event)).slice(0, limit);
  }

  /**
   * A cached value checked like a client's event (size, JSON, shape, id, and stored under its own id); a bad one is
   * reported and dropped from the cache, never served and never a reason to call Redis down. Signatures are checked
   * by the caller (ResilientCache), in one batch.
   */
  private checkCached(raw: string, id: string): StoredEvent | null {
    const check = checkEntry(raw, this.maxEntryBytes, id);
    if (check.ok) return check.item;
    this.onPoison('cache', check.reason, check.detail, raw, { id });
    this.forget([id]);
    return null;
  }

  async ping(): Promise<void> {
    try {
      await this.redis.ping();
    } catch (err) {
      throw this.fail('Redis ping failed', err);
    }
  }

  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    try {
      await this.redis.quit();
    } catch (err) {
      // QUIT cannot be sent while disconnected; drop the socket and stop reconnecting instead.
      this.log.debug({ err }, 'Redis QUIT failed; disconnecting');
      this.redis.disconnect();
    }
  }
}

/** Builds the cache from the relay configuration. */
export function createEventCache(config: RedisCacheConfig, logger: Logger, extras?: RedisCacheExtras): RedisEventCache {
  return new RedisEventCache(config, logger, extras);
}

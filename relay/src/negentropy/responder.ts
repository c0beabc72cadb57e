import type { Logger } from 'pino';
import type pg from 'pg';
import type { RelayLimits } from '../config/schema.js';
import { FilterError, parseFilter, type Filter } from '../nostr/filter.js';
import type { ClientConnection } from '../server/connection.js';
import type { MessageHandler } from '../server/connection.js';
import { compareBytes, fromHex, NegentropyError, PROTOCOL_VERSION, toHex } from './encoding.js';
import { wholeSetMessage } from './initiator.js';
import { Reconciler } from './reconcile.js';
import { loadRecords, NegentropyVector, TooManyRecordsError } from './storage.js';
import type { EventTimeChanges } from './time-changes.js';
import type { WindowSummaries } from './window-summaries.js';

export interface ResponderOptions {
  pool: pg.Pool;
  limits: RelayLimits;
  /** Most records one session may reconcile; larger sets get `NEG-ERR "blocked: too many records"`. */
  maxRecords: number;
  /** Open sessions per connection. */
  maxSessionsPerConnection: number;
  /** Largest NEG-MSG we send, bytes before hex encoding (0 = unlimited). */
  frameSizeLimit: number;
  logger: Logger;
  onSession?: (connection: ClientConnection, records: number) => void;
  /**
   * Cached window fingerprints per proven peer (null: none for this connection) and the change log that keeps
   * them honest. A peer opening a time window with its fingerprint alone is answered from the cache when equal.
   */
  summariesFor?: (connection: ClientConnection) => WindowSummaries | null;
  changes?: EventTimeChanges;
  /** A NEG-OPEN answered from the cached fingerprint (no records loaded). */
  onCachedMatch?: (connection: ClientConnection) => void;
  /** A client's (not a proven peer's) NEG-OPEN was refused by the client caps; default: counted on the connection. */
  onClientRefused?: (connection: ClientConnection) => void;
}

const SESSIONS = 'negentropy.sessions';

/**
 * A session whose records are still loading holds its slot, so NEG-OPENs sent together cannot all pass the
 * session count while the first ones wait for PostgreSQL.
 */
interface Loading {
  loading: true;
}

/**
 * The relay side of NIP-77: NEG-OPEN loads the matching (created_at, id) records and answers the
 * initiator's first message; NEG-MSG continues; NEG-CLOSE ends. A proven peer (authenticated as a node we hold
 * a link to, `ClientConnection.isProvenPeer`) gets `maxSessionsPerConnection` sessions of up to `maxRecords`;
 * any other connection gets `limits.negentropyClientSessions` sessions of up to
 * `limits.negentropyClientMaxRecords` (it only learns ids it could query anyway, but a million-row session
 * costs ~40 MB and a long scan).
 */
export function negentropyHandlers(options: ResponderOptions): Record<'NEG-OPEN' | 'NEG-MSG' | 'NEG-CLOSE', MessageHandler> {
  const log = options.logger.child({ component: 'negentropy' });
  options = { onClientRefused: (c) => c.countRefusal('neg-open-client'), ...options };
  const sessionsOf = (c: ClientConnection): Map<string, Reconciler | Loading> => {
    let sessions = c.attributes.get(SESSIONS) as Map<string, Reconciler | Loading> | undefined;
    if (!sessions) {
      sessions = new Map();
      c.attributes.set(SESSIONS, sessions);
    }
    return sessions;
  };
  const fail = (c: ClientConnection, subId: string, reason: string) => {
    sessionsOf(c).delete(subId);
    c.send(JSON.stringify(['NEG-ERR', subId, reason]));
  };
  const answer = (c: ClientConnection, subId: string, session: Reconciler, hex: unknown) => {
    if (typeof hex !== 'string') return fail(c, subId, 'invalid: message must be a hex string');
    try {
      const { output } = session.reconcile(fromHex(hex));
      c.send(JSON.stringify(['NEG-MSG', subId, toHex(output!)]));
    } catch (err) {
      if (!(err instanceof NegentropyError)) throw err;
      fail(c, subId, 'invalid: ' + err.message);
    }
  };

  /**
   * The cache applies to a peer's NEG-OPEN over a plain time window (since/until only) whose message is one
   * fingerprint over the whole window, as our own windowed initiator sends. Null otherwise, or when the change
   * log cannot be read (then nothing cached can be trusted).
   */
  const windowCache = async (c: ClientConnection, filter: Filter, hex: unknown) => {
    const summaries = options.summariesFor?.(c);
    if (!summaries || !options.changes || typeof hex !== 'string') return null;
    if (filter.ids || filter.authors || filter.kinds || filter.tags) return null;
    let theirs;
    try {
      theirs = fromHex(hex);
    } catch {
      return null;
    }
    if (theirs.length !== 1 + 3 + 16) return null;
    const fingerprint = theirs.subarray(4);
    if (compareBytes(wholeSetMessage(fingerprint), theirs) !== 0) return null;
    try {
      await options.changes.poll();
    } catch {
      return null;
    }
    const since = filter.since ?? 0;
    const until = filter.until ?? Infinity;
    return { summaries, since, until, theirs: fingerprint, summary: summaries.get(since, until), generation: options.changes.generation };
  };

  return {
    'NEG-OPEN': async (c, message) => {
      const [, subId, rawFilter, hex] = message;
      if (typeof subId !== 'string' || subId.length === 0 || subId.length > options.limits.maxSubidLength) {
        c.notice('invalid: NEG-OPEN needs a subscription id string');
        return;
      }
      const peer = c.isProvenPeer();
      const maxSessions = peer ? options.maxSessionsPerConnection : Math.min(options.limits.negentropyClientSessions, options.maxSessionsPerConnection);
      const maxRecords = peer ? options.maxRecords : Math.min(options.limits.negentropyClientMaxRecords, options.maxRecords);
      const sessions = sessionsOf(c);
      sessions.delete(subId);
      if (!peer) {
        const limited = c.takeQueryToken();
        if (limited) return fail(c, subId, limited);
      }
      if (sessions.size >= maxSessions) {
        if (!peer) options.onClientRefused?.(c);
        return fail(c, subId, maxSessions === 0
          ? 'restricted: negentropy sync is for peers of this relay network'
          : `blocked: too many negentropy sessions (the limit is ${maxSessions})`);
      }
      let filter;
      try {
        filter = parseFilter(rawFilter, { maxListLength: options.limits.maxFilterValues, maxLimit: Number.MAX_SAFE_INTEGER, defaultLimit: Number.MAX_SAFE_INTEGER });
      } catch (err) {
        if (err instanceof FilterError) return fail(c, subId, 'invalid: ' + err.message);
        throw err;
      }
      const loading: Loading = { loading: true };
      sessions.set(subId, loading);
      const cache = peer ? await windowCache(c, filter, hex) : null;
      if (sessions.get(subId) !== loading) return;
      if (cache?.summary && compareBytes(cache.summary.fingerprint, cache.theirs) === 0) {
        sessions.delete(subId);
        options.onCachedMatch?.(c);
        c.send(JSON.stringify(['NEG-MSG', subId, toHex(Uint8Array.of(PROTOCOL_VERSION))]));
        return;
      }
      let records;
      let expiresAt;
      try {
        ({ records, expiresAt } = await loadRecords(options.pool, filter, maxRecords));
      } catch (err) {
        // Closed or replaced (same id) meanwhile: the answer belongs to nobody.
        if (sessions.get(subId) !== loading) return;
        if (err instanceof TooManyRecordsError) {
          if (!peer) options.onClientRefused?.(c);
          return fail(c, subId, `blocked: too many records (the limit is ${maxRecords}${peer ? '' : ' for clients'}); narrow the filter`);
        }
        log.error({ err, subId }, 'negentropy records could not be read');
        return fail(c, subId, 'error: could not read stored events; try again later');
      }
      if (sessions.get(subId) !== loading) return;
      const vector = NegentropyVector.fromRecords(records);
      // Cached unless a poll since ours touched the window (our read may predate a change that poll applied).
      if (cache && !options.changes!.changedSince(cache.generation, cache.since, cache.until)) {
        const { since, until } = cache;
        cache.summaries.put({ since, until, count: vector.size, fingerprint: vector.fingerprint(0, vector.size), expiresAt, storedAt: Date.now() });
      }
      const session = new Reconciler(vector, false, options.frameSizeLimit);
      sessions.set(subId, session);
      options.onSession?.(c, records.length);
      log.debug({ subId, records: records.length, source: c.source }, 'negentropy session opened');
      answer(c, subId, session, hex);
    },
    'NEG-MSG': (c, message) => {
      const [, subId, hex] = message;
      if (typeof subId !== 'string') return c.notice('invalid: NEG-MSG needs a subscription id string');
      const session = sessionsOf(c).get(subId);
      if (!session) return fail(c, subId, 'closed: no such negentropy session');
      if (!(session instanceof Reconciler)) return fail(c, subId, 'invalid: NEG-MSG before the NEG-OPEN was answered');
      answer(c, subId, session, hex);
    },
    'NEG-CLOSE': (c, message) => {
      const [, subId] = message;
      if (typeof subId === 'string') sessionsOf(c).delete(subId);
    },
  };
}

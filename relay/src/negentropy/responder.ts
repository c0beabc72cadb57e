import type { Logger } from 'pino';
import type pg from 'pg';
import type { RelayLimits } from '../config/schema.js';
import { FilterError, parseFilter } from '../nostr/filter.js';
import type { ClientConnection } from '../server/connection.js';
import type { MessageHandler } from '../server/connection.js';
import { fromHex, NegentropyError, toHex } from './encoding.js';
import { Reconciler } from './reconcile.js';
import { loadRecords, NegentropyVector, TooManyRecordsError } from './storage.js';

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
      let records;
      try {
        records = await loadRecords(options.pool, filter, maxRecords);
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
      const session = new Reconciler(NegentropyVector.fromRecords(records), false, options.frameSizeLimit);
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

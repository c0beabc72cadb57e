import { Redis } from 'ioredis';
import type { Relay } from '../app.js';
import type { IngestSource } from '../ingest/source.js';
import { FallbackRateLimiter } from '../ratelimit/limiter.js';
import { RateLimitGuard } from '../ratelimit/rate-limit-guard.js';
import { parseRateRules } from '../ratelimit/rules.js';
import type { AccessControl } from '../security/access-control.js';
import { ipOfAddress, normalizeSubject, subjectOfSource, subjectTypeOf } from '../security/subjects.js';
import { BanList } from './ban-list.js';
import { BanStore } from './ban-store.js';
import { ReputationMetrics } from './metrics.js';
import { parsePenalties, type Offence } from './offences.js';
import { registerReputationRoutes } from './routes.js';
import { ScoreBoard } from './scores.js';

/** WebSocket close code for a banned subject's connections (1008: policy violation). */
const BANNED_CLOSE_CODE = 1008;

/**
 * The Byzantine defence as the relay's AccessControl: the persistent ban list, reputation scores fed by the
 * ingest pipeline (invalid events, rate-limit hits) and the connections (malformed messages), the rate limit
 * guard, and the admin endpoints. Installed by `attachReputation`.
 */
export class Reputation implements AccessControl {
  constructor(readonly bans: BanList, readonly scores: ScoreBoard, readonly limiter: FallbackRateLimiter, private readonly penalize: (subject: string, offence: Offence) => void) {}

  isBanned(subject: string): boolean {
    return this.bans.isBanned(subject);
  }

  onBanned(listener: (subject: string, reason: string) => void): void {
    this.bans.onBanned(listener);
  }

  onUnbanned(listener: (subject: string) => void): void {
    this.bans.onUnbanned(listener);
  }

  ready(): Promise<void> {
    return this.bans.ready();
  }

  report(subject: string, offence: Offence): void {
    this.penalize(normalizeSubject(subject), offence);
  }
}

/** Wires reputation, rate limits and bans into the relay and installs them as `relay.access`. */
export function attachReputation(relay: Relay): Reputation {
  const { config, pipeline, server } = relay;
  const log = relay.log.child({ component: 'reputation' });
  const rules = parseRateRules(config.rateLimits);
  const penalties = parsePenalties(config.reputationPenalties);
  const exempt = new Set(config.reputationExempt.map(normalizeSubject));

  const redis = new Redis(config.redisUrl, {
    // Fail fast while Redis is away (the limiter falls back to memory) instead of queueing behind reconnects.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  redis.on('error', (err) => log.debug({ err }, 'rate limiter Redis connection error'));
  const limiter = new FallbackRateLimiter(redis, config.redisKeyPrefix, log.child({ part: 'rate-limiter' }));
  const store = new BanStore(config.databaseUrl, log.child({ part: 'ban-store' }));
  const bans = new BanList(store, { baseSeconds: config.banBaseSeconds, escalation: config.banEscalation, maxSeconds: config.banMaxSeconds }, log.child({ part: 'bans' }));
  const scores = new ScoreBoard({ penalties, recoveryPerMinute: config.reputationRecoveryPerMinute, banThreshold: config.reputationBanThreshold });

  const metrics = new ReputationMetrics(relay.metrics.registry, {
    activeBans: () => {
      const counts: Record<string, number> = { peer: 0, client: 0 };
      for (const ban of bans.list()) counts[ban.type] = (counts[ban.type] ?? 0) + 1;
      return counts;
    },
    scores: () => scores.list(),
    backend: () => limiter.backend,
  });

  const penalize = (subject: string, offence: Offence) => {
    if (penalties[offence] <= 0) return;
    metrics.offences.inc({ offence, type: subjectTypeOf(subject) });
    bans.liftIfExpired(subject);
    scores.penalize(subject, offence);
  };
  const reputation = new Reputation(bans, scores, limiter, penalize);

  scores.onThreshold((subject, offence, view) => {
    log.warn({ subject, ...(view.type === 'peer' ? { nodeId: subject } : { clientAddress: subject }), score: view.score, offence, offences: view.offences }, 'reputation fell to the ban threshold');
    if (exempt.has(subject)) {
      log.warn({ subject }, 'subject is exempt from automatic bans (reputation_exempt); not banning');
      return;
    }
    const counts = Object.entries(view.offences).map(([o, n]) => `${n} ${o}`).join(', ');
    bans.autoBan(subject, `reputation ${view.score} <= ${scores.threshold} (${counts})`);
  });

  bans.onBanned((subject) => {
    const ban = bans.get(subject);
    metrics.bans.inc({ origin: ban?.origin ?? 'manual', type: subjectTypeOf(subject) });
    // Cut every connection speaking for the subject at once; the peering layer also drops its own links.
    for (const connection of server.connections) {
      const source = connection.source;
      const speaksFor = source.kind === 'peer' ? source.nodeId.toLowerCase() === subject : false;
      if (speaksFor || ipOfAddress(connection.address) === subject) connection.close(BANNED_CLOSE_CODE, 'banned');
    }
  });
  bans.onUnbanned((subject) => scores.reset(subject));

  // Banned subjects' events still in flight (or queued by a peer link) are refused before anything else.
  pipeline.addGuard({
    check: (_event, source: IngestSource) => (bans.isBanned(subjectOfSource(source)) ? { ok: false, message: 'blocked: banned' } : null),
  });
  const guard = new RateLimitGuard(rules, limiter, log.child({ part: 'rate-limit' }));
  // A refusal of traffic we asked for (anti-entropy fetches over our own link: no connection id) or of one of our
  // configured peers is back-pressure between honest relays (a large heal), not an offence: it is retried, not scored.
  const rateLimitIsOffence = (source: IngestSource) =>
    source.kind !== 'peer' || (source.connectionId !== undefined && !relay.peering?.allowList.isConfigured(source.nodeId));
  guard.onLimited((hit) => {
    metrics.rateLimited.inc({ scope: hit.rule.scope, source: hit.source.kind });
    if (rateLimitIsOffence(hit.source)) penalize(subjectOfSource(hit.source), 'rate-limit');
  });
  pipeline.addGuard(guard);

  pipeline.onInvalid((source, reason) => {
    metrics.invalidEvents.inc({ reason, source: source.kind });
    penalize(subjectOfSource(source), reason);
  });
  server.onClientConnected((connection) => {
    connection.onMalformed = () => penalize(subjectOfSource(connection.source), 'malformed');
  });

  registerReputationRoutes(relay.admin, {
    bans,
    scores,
    connectedPeers: () => [...server.connections].flatMap((c) => (c.source.kind === 'peer' ? [c.source.nodeId.toLowerCase()] : [])),
    nodeId: () => relay.nodeId,
    settings: { recoveryPerMinute: config.reputationRecoveryPerMinute, penalties, exempt: [...exempt], rateLimits: rules.map((r) => r.text) },
  });
  relay.addStatus(() => ({ reputation: { activeBans: bans.list().length, rateLimiter: limiter.backend } }));
  relay.onStop(async () => {
    await bans.close();
    await store.close();
    redis.disconnect();
  });
  log.info({ rateLimits: rules.map((r) => r.text), banThreshold: scores.threshold, exempt: [...exempt] }, 'reputation, rate limits and bans attached');
  return reputation;
}

import { Counter, Gauge, type Registry } from 'prom-client';

/** Byzantine-defence metrics, on the relay's registry. */
export class ReputationMetrics {
  readonly invalidEvents: Counter<'reason' | 'source'>;
  readonly rateLimited: Counter<'scope' | 'source'>;
  readonly bans: Counter<'origin' | 'type'>;
  readonly activeBans: Gauge<'type'>;
  readonly scores: Gauge<'subject' | 'type'>;
  readonly offences: Counter<'offence' | 'type'>;
  readonly limiterBackend: Gauge<'backend'>;

  constructor(registry: Registry, collect: { activeBans: () => Record<string, number>; scores: () => Array<{ subject: string; type: string; score: number }>; backend: () => string }) {
    const registers = [registry];
    this.invalidEvents = new Counter({ name: 'relay_invalid_events_total', help: 'Events refused as invalid (shape, id, signature), by reason and source', labelNames: ['reason', 'source'], registers });
    this.rateLimited = new Counter({ name: 'relay_rate_limited_total', help: 'Events refused by a rate limit, by rule scope and source', labelNames: ['scope', 'source'], registers });
    this.bans = new Counter({ name: 'relay_bans_total', help: 'Bans imposed, by origin (auto, manual, import) and subject type (peer, client)', labelNames: ['origin', 'type'], registers });
    this.offences = new Counter({ name: 'relay_reputation_offences_total', help: 'Reputation penalties, by offence and subject type', labelNames: ['offence', 'type'], registers });
    this.activeBans = new Gauge({
      name: 'relay_active_bans',
      help: 'Bans in force, by subject type',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        for (const [type, n] of Object.entries(collect.activeBans())) this.set({ type }, n);
      },
    });
    this.scores = new Gauge({
      name: 'relay_reputation_score',
      help: 'Current reputation score of every subject with a recent offence (100 = clean)',
      labelNames: ['subject', 'type'],
      registers,
      collect() {
        this.reset();
        for (const s of collect.scores()) this.set({ subject: s.subject, type: s.type }, s.score);
      },
    });
    this.limiterBackend = new Gauge({
      name: 'relay_rate_limiter_backend',
      help: '1 for the rate limiter backend in use (redis, or memory while Redis is unreachable)',
      labelNames: ['backend'],
      registers,
      collect() {
        const backend = collect.backend();
        this.set({ backend: 'redis' }, backend === 'redis' ? 1 : 0);
        this.set({ backend: 'memory' }, backend === 'memory' ? 1 : 0);
      },
    });
  }
}

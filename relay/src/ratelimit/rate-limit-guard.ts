import type { Logger } from 'pino';
import type { IngestGuard } from '../ingest/pipeline.js';
import type { IngestResult, IngestSource } from '../ingest/source.js';
import type { NostrEvent } from '../nostr/event.js';
import { ipOfAddress } from '../security/subjects.js';
import { ruleApplies, type RateRule, type RateScope } from './rules.js';
import type { LimitCheck, RateLimiter } from './window.js';

export interface RateLimitHit {
  source: IngestSource;
  rule: RateRule;
  count: number;
}

/** The subject a rule counts for this event, or undefined when the rule's scope does not apply to the source. */
function subjectFor(scope: RateScope, event: NostrEvent, source: IngestSource): string | undefined {
  switch (scope) {
    case 'connection':
      return source.kind === 'client' ? source.address : undefined;
    case 'ip':
      return source.kind === 'client' ? ipOfAddress(source.address) : undefined;
    case 'pubkey':
      return source.kind === 'client' ? event.pubkey : undefined;
    case 'peer':
      return source.kind === 'peer' ? source.nodeId : undefined;
  }
}

/**
 * Ingest guard enforcing the rate limit rules before the signature check, so a flood costs one Redis round
 * trip per event and no verification work. Every submission is counted, refused ones included: a client
 * that keeps flooding stays limited instead of getting a fresh allowance each window.
 */
export class RateLimitGuard implements IngestGuard {
  private readonly listeners: Array<(hit: RateLimitHit) => void> = [];

  constructor(private readonly rules: RateRule[], private readonly limiter: RateLimiter, private readonly log: Logger) {}

  onLimited(listener: (hit: RateLimitHit) => void): void {
    this.listeners.push(listener);
  }

  async check(event: NostrEvent, source: IngestSource): Promise<IngestResult | null> {
    const checks: LimitCheck[] = [];
    const applied: RateRule[] = [];
    this.rules.forEach((rule, index) => {
      if (!ruleApplies(rule, event.kind)) return;
      const subject = subjectFor(rule.scope, event, source);
      if (subject === undefined) return;
      checks.push({ key: `${rule.scope}:${index}:${subject}`, limit: rule.limit, windowSeconds: rule.windowSeconds });
      applied.push(rule);
    });
    if (checks.length === 0) return null;
    const result = await this.limiter.hit(checks);
    if (result.allowed) return null;
    const rule = applied[result.exceeded!]!;
    const hit: RateLimitHit = { source, rule, count: Math.round(result.counts[result.exceeded!]!) };
    for (const listener of this.listeners) {
      try {
        listener(hit);
      } catch (err) {
        this.log.error({ err }, 'rate-limit listener failed');
      }
    }
    return { ok: false, message: `rate-limited: more than ${rule.limit} events per ${rule.windowSeconds}s (${rule.scope}); slow down` };
  }
}

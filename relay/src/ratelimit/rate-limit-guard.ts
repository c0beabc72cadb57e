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

/** Longest a refusal is remembered locally, ms. */
const MAX_HOLD_MS = 250;

/**
 * Ingest guard enforcing the rate limit rules before the signature check, so a flood costs no verification
 * work. Refused submissions use no quota: a flooding sender is throttled to its limit; its rate-limit hits cost
 * it reputation instead, which ends a sustained flood in a ban.
 *
 * Once Redis refuses a subject, further hits on that counter are refused locally for the time one slot takes to
 * free up (window / limit, at most 250 ms): a flood at 10x the limit then costs about one Redis round trip per
 * freed slot instead of one per event, which keeps the relay's CPU for honest traffic.
 */
export class RateLimitGuard implements IngestGuard {
  private readonly listeners: Array<(hit: RateLimitHit) => void> = [];
  /** Counter key → until when (epoch ms) it is refused without asking the limiter. */
  private readonly held = new Map<string, { until: number; rule: RateRule; count: number }>();

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
    const now = Date.now();
    for (const check of checks) {
      const hold = this.held.get(check.key);
      if (!hold) continue;
      if (hold.until > now) return this.refuse({ source, rule: hold.rule, count: hold.count });
      this.held.delete(check.key);
    }
    const result = await this.limiter.hit(checks, now);
    if (result.allowed) return null;
    const rule = applied[result.exceeded!]!;
    const count = Math.round(result.counts[result.exceeded!]!);
    if (this.held.size > 100_000) this.held.clear();
    this.held.set(checks[result.exceeded!]!.key, { until: now + Math.min(MAX_HOLD_MS, (rule.windowSeconds * 1000) / rule.limit), rule, count });
    return this.refuse({ source, rule, count });
  }

  private refuse(hit: RateLimitHit): IngestResult {
    const { rule } = hit;
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

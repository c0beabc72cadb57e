/**
 * Rate limit rules, written `scope:kinds:count/window`:
 *   scope   connection (one client WebSocket), ip (all clients of one address), pubkey (event author, client
 *           submissions only: a peer relays many authors and is limited by its own rule), peer (one peer node);
 *   kinds   `*`, a single kind `7`, or an inclusive range `20000-29999`;
 *   window  seconds, or with a unit: `10s`, `5m`, `1h`.
 * e.g. `connection:*:2000/10s`, `connection:20000-29999:500/10s`, `peer:*:20000/10s`.
 */
export type RateScope = 'connection' | 'ip' | 'pubkey' | 'peer';

export interface RateRule {
  /** The rule as written, for messages and keys. */
  text: string;
  scope: RateScope;
  minKind: number;
  maxKind: number;
  limit: number;
  windowSeconds: number;
}

export const RATE_SCOPES: readonly RateScope[] = ['connection', 'ip', 'pubkey', 'peer'];

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const MAX_KIND = 0x7fffffff;

export class RateRuleError extends Error {
  override name = 'RateRuleError';
}

/** Parses a duration like `10s`, `5m`, `1h`, `2d` or plain seconds; returns seconds. */
export function parseDurationSeconds(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/i.exec(text.trim());
  if (!match) throw new RateRuleError(`"${text}" is not a duration (use e.g. 30s, 10m, 1h, 7d)`);
  const seconds = Number(match[1]) * UNIT_SECONDS[(match[2] || 's').toLowerCase()]!;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new RateRuleError(`"${text}" must be a positive duration`);
  return seconds;
}

export function parseRateRule(text: string): RateRule {
  const parts = text.trim().split(':');
  if (parts.length !== 3) throw new RateRuleError(`rate limit "${text}" must look like scope:kinds:count/window (e.g. peer:*:20000/10s)`);
  const [scope, kinds, rate] = parts as [string, string, string];
  if (!(RATE_SCOPES as readonly string[]).includes(scope)) {
    throw new RateRuleError(`rate limit "${text}": scope must be one of ${RATE_SCOPES.join(', ')}`);
  }
  let minKind = 0;
  let maxKind = MAX_KIND;
  if (kinds !== '*') {
    const range = /^(\d+)(?:-(\d+))?$/.exec(kinds);
    if (!range) throw new RateRuleError(`rate limit "${text}": kinds must be *, N or FROM-TO`);
    minKind = Number(range[1]);
    maxKind = range[2] === undefined ? minKind : Number(range[2]);
    if (maxKind < minKind) throw new RateRuleError(`rate limit "${text}": kind range is empty`);
  }
  const countWindow = /^(\d+)\/(.+)$/.exec(rate);
  if (!countWindow) throw new RateRuleError(`rate limit "${text}": rate must be count/window (e.g. 100/10s)`);
  const limit = Number(countWindow[1]);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RateRuleError(`rate limit "${text}": count must be at least 1`);
  let windowSeconds: number;
  try {
    windowSeconds = parseDurationSeconds(countWindow[2]!);
  } catch (err) {
    throw new RateRuleError(`rate limit "${text}": ${(err as Error).message}`);
  }
  return { text: text.trim(), scope: scope as RateScope, minKind, maxKind, limit, windowSeconds };
}

export function parseRateRules(texts: readonly string[]): RateRule[] {
  return texts.map(parseRateRule);
}

export function ruleApplies(rule: RateRule, kind: number): boolean {
  return kind >= rule.minKind && kind <= rule.maxKind;
}

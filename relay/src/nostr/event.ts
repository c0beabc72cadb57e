import { createHash } from 'node:crypto';

/** A NIP-01 event exactly as it travels on the wire. */
export interface NostrEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

export function isHex64(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}

/**
 * Checks the shape of an untrusted event. Returns a reason (without the `invalid:` prefix) or null.
 * Unknown extra fields are tolerated (NIP-01 clients may add them) and preserved by storing the raw JSON.
 */
export function eventShapeError(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'event must be a JSON object';
  const ev = value as Record<string, unknown>;
  if (!isHex64(ev.id)) return 'id must be 64 lowercase hex characters';
  if (!isHex64(ev.pubkey)) return 'pubkey must be 64 lowercase hex characters';
  if (typeof ev.sig !== 'string' || !HEX128.test(ev.sig)) return 'sig must be 128 lowercase hex characters';
  if (typeof ev.created_at !== 'number' || !Number.isSafeInteger(ev.created_at)) return 'created_at must be an integer';
  if (typeof ev.kind !== 'number' || !Number.isSafeInteger(ev.kind) || ev.kind < 0) return 'kind must be a non-negative integer';
  if (typeof ev.content !== 'string') return 'content must be a string';
  if (!Array.isArray(ev.tags)) return 'tags must be an array';
  for (const tag of ev.tags) {
    if (!Array.isArray(tag)) return 'each tag must be an array';
    for (const item of tag) if (typeof item !== 'string') return 'tag items must be strings';
  }
  return null;
}

/** sha256 of the canonical serialization (what nostr-tools computes). */
export function computeEventId(ev: Pick<NostrEvent, 'pubkey' | 'created_at' | 'kind' | 'tags' | 'content'>): string {
  const canonical = JSON.stringify([0, ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** First value of the first tag with this name, if any. */
export function firstTagValue(ev: Pick<NostrEvent, 'tags'>, name: string): string | undefined {
  for (const tag of ev.tags) if (tag[0] === name && tag.length > 1) return tag[1];
  return undefined;
}

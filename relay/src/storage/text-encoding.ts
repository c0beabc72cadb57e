/**
 * PostgreSQL TEXT cannot hold U+0000 and JSONB also refuses lone surrogates, yet both are legal in Nostr strings
 * (the conformance checklist sends them). Such values are stored as U+0001 followed by their JSON string form,
 * which is plain, well-formed text. Values that already start with U+0001 are escaped the same way, so the
 * mapping is injective: equal stored values mean equal original values, and tag filters stay exact.
 */
const ESCAPE_MARK = '\u0001';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function needsEscape(s: string): boolean {
  return s.includes('\u0000') || s.startsWith(ESCAPE_MARK) || LONE_SURROGATE.test(s);
}

export function encodeText(s: string): string {
  return needsEscape(s) ? ESCAPE_MARK + JSON.stringify(s) : s;
}

export function decodeText(s: string): string {
  return s.startsWith(ESCAPE_MARK) ? (JSON.parse(s.slice(1)) as string) : s;
}

import type { Logger } from 'pino';

/** Set in NIP-11 `software` by this project's relays: they also take PEER-HOPS frames (hop counts). */
export const OUR_SOFTWARE = 'https://github.com/chaos-relay-network';
const NIP11_TIMEOUT_MS = 5000;
/** A NIP-11 document is small; a peer sending more is not read into memory. */
const NIP11_MAX_BYTES = 256 * 1024;

/** What a peer's NIP-11 document tells a link (nothing in it proves identity: that is PEER-PROOF's job). */
export interface PeerInformation {
  /** One of this project's relays (PEER-HOPS, PEER-PROVE). */
  isOurs: boolean;
  /** Its max_message_length, when it gave a positive number. */
  maxMessageLength: number | null;
}

export function parseInformation(info: Record<string, unknown>): PeerInformation {
  const limit = (info.limitation as { max_message_length?: unknown } | undefined)?.max_message_length;
  return { isOurs: info.software === OUR_SOFTWARE, maxMessageLength: typeof limit === 'number' && limit > 0 ? limit : null };
}

/** The NIP-11 document at the relay's HTTP URL, or null (unreachable, not JSON, too large, or too slow). */
export async function fetchInformation(url: string, log: Logger): Promise<PeerInformation | null> {
  const httpUrl = url.replace(/^ws(s?):\/\//i, 'http$1://');
  try {
    const res = await fetch(httpUrl, { headers: { accept: 'application/nostr+json' }, signal: AbortSignal.timeout(NIP11_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > NIP11_MAX_BYTES) throw new Error('NIP-11 document too large');
    const info: unknown = JSON.parse(text);
    if (typeof info !== 'object' || info === null || Array.isArray(info)) throw new Error('NIP-11 document is not an object');
    return parseInformation(info as Record<string, unknown>);
  } catch (err) {
    log.debug({ err }, 'peer NIP-11 document unavailable');
    return null;
  }
}

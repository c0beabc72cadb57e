import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { IngestGuard } from '../ingest/pipeline.js';
import type { IngestResult, IngestSource } from '../ingest/source.js';
import type { NostrEvent } from '../nostr/event.js';
import { subjectOfSource } from '../security/subjects.js';

/** Ephemeral kind of membership updates: relays pass them on but never store them. */
export const GOSSIP_KIND = 20780;

/** Bounds of one membership update: a network of more members than this is far beyond what gossip is built for. */
const MAX_LINKS = 256;
const MAX_MEMBERS = 1024;
const MAX_URL_LENGTH = 2048;
const NODE_ID = /^[0-9a-f]{64}$/;

export interface GossipContent {
  v: 1;
  seq: number;
  url: string;
  links: string[];
  members: Array<{ nodeId: string; url: string | null; status: string; lastHeard: string | null }>;
}

/** Parses a membership update's content; returns the reason it is malformed instead of throwing. */
export function parseGossipContent(content: string): GossipContent | { error: string } {
  let c: unknown;
  try {
    c = JSON.parse(content);
  } catch {
    return { error: 'content is not JSON' };
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return { error: 'content is not an object' };
  const g = c as Record<string, unknown>;
  if (g.v !== 1) return { error: 'unknown version' };
  if (typeof g.seq !== 'number' || !Number.isFinite(g.seq) || g.seq <= 0) return { error: 'seq is not a positive number' };
  if (typeof g.url !== 'string' || g.url.length > MAX_URL_LENGTH) return { error: 'url is not a string' };
  if (!Array.isArray(g.links) || g.links.length > MAX_LINKS || !g.links.every((l) => typeof l === 'string' && NODE_ID.test(l))) {
    return { error: `links is not a list of at most ${MAX_LINKS} node ids` };
  }
  if (!Array.isArray(g.members) || g.members.length > MAX_MEMBERS) return { error: `members is not a list of at most ${MAX_MEMBERS}` };
  for (const m of g.members as unknown[]) {
    if (typeof m !== 'object' || m === null) return { error: 'a member is not an object' };
    const e = m as Record<string, unknown>;
    if (typeof e.nodeId !== 'string' || !NODE_ID.test(e.nodeId)) return { error: 'a member has no node id' };
    if (e.url !== null && (typeof e.url !== 'string' || e.url.length > MAX_URL_LENGTH)) return { error: 'a member url is not a string' };
  }
  return g as unknown as GossipContent;
}

export interface GossipGuardOptions {
  verify: (id: string, pubkey: string, sig: string) => Promise<boolean>;
  /** Charges a subject (client IP or author key) for malformed gossip. */
  report: (subject: string, offence: 'gossip') => void;
  refused: Counter;
  logger: Logger;
}

const refuse = (message: string): IngestResult => ({ ok: false, message });

/**
 * Gossip is checked before it is accepted, so it is never forwarded malformed: an honest relay that passed on
 * what a client sent would otherwise be blamed for it by the next relay (partition on demand).
 *
 * - From a client: refused, whatever it holds (gossip is relay-to-relay traffic); malformed gossip also costs
 *   the client's address reputation.
 * - From a peer: malformed gossip is refused and charged to its *author's* key once its signature verifies (the
 *   relayer did not write it); with a bad signature it is left to the pipeline's signature check, which charges
 *   the sender as for any forged event (honest relays verify before forwarding).
 */
export function gossipGuard(options: GossipGuardOptions): IngestGuard {
  const log = options.logger.child({ component: 'gossip-guard' });
  return {
    async check(event: NostrEvent, source: IngestSource): Promise<IngestResult | null> {
      if (event.kind !== GOSSIP_KIND) return null;
      const parsed = parseGossipContent(event.content);
      const error = 'error' in parsed ? parsed.error : null;
      if (source.kind === 'client') {
        options.refused.inc({ reason: error ? 'malformed' : 'from-client', source: 'client' });
        if (!error) return refuse(`restricted: kind ${GOSSIP_KIND} is peer gossip; only authenticated peer relays may send it`);
        options.report(subjectOfSource(source), 'gossip');
        log.warn({ clientAddress: source.address, author: event.pubkey, reason: error }, 'malformed gossip refused');
        return refuse(`invalid: malformed gossip (${error})`);
      }
      if (!error) return null;
      if (!(await options.verify(event.id, event.pubkey, event.sig))) return null;
      options.refused.inc({ reason: 'malformed', source: 'peer' });
      options.report(event.pubkey, 'gossip');
      log.warn({ author: event.pubkey, from: source.nodeId, reason: error }, 'malformed gossip refused; charged to its author');
      return refuse(`invalid: malformed gossip (${error})`);
    },
  };
}

import type { OkResult } from './link-requests.js';
import { isRateLimited, sleep, type Pacer } from './pacer.js';
import type { OutboundQueue } from './outbound-queue.js';

/** Queued events in flight (sent, OK not yet back) while a returning peer catches up. */
const DRAIN_WINDOW = 400;
/** A bulk event the peer refused with `rate-limited:` is sent again after a pause, at most this many times. */
export const RATE_LIMIT_RETRIES = 8;
const RATE_LIMIT_PAUSE_MS = 1000;

/** What bulk sending needs of a link. */
export interface BulkTarget {
  readonly isUp: boolean;
  readonly queue: OutboundQueue;
  draining: boolean;
  readonly options: { pacer: Pacer; heartbeatTimeoutMs: number };
  pushEvent(raw: string, id: string, hops: number, timeoutMs: number): Promise<OkResult>;
}

/**
 * A bulk push (drain, anti-entropy, REQ catch-up): waits for the pacer, and sends again after a pause when the
 * peer says `rate-limited:` (its budget is shared with live traffic we cannot see), so a large heal slows down
 * instead of losing events or looking like a flood.
 */
export async function pushPaced(link: BulkTarget, raw: string, id: string, hops: number, timeoutMs: number): Promise<OkResult> {
  let result: OkResult = { ok: false, message: 'error: not sent' };
  for (let attempt = 0; attempt <= RATE_LIMIT_RETRIES && link.isUp; attempt++) {
    await link.options.pacer.take(1);
    result = await link.pushEvent(raw, id, hops, timeoutMs);
    if (!isRateLimited(result.message)) return result;
    await sleep(RATE_LIMIT_PAUSE_MS * (attempt + 1));
  }
  return result;
}

/**
 * Sends what queued up while the peer was away with at most DRAIN_WINDOW events awaiting their OK: a peer that
 * just came back is not buried under thousands of events at once (its heartbeat answers would queue behind
 * them and it would look dead), yet its ingest pipeline stays busy (group commits fill up).
 */
export async function drainQueue(link: BulkTarget): Promise<number> {
  if (link.draining) return 0;
  link.draining = true;
  let sent = 0;
  const timeoutMs = Math.max(30_000, link.options.heartbeatTimeoutMs);
  try {
    while (link.isUp && link.queue.depth > 0) {
      const batch = link.queue.drain();
      let next = 0;
      const worker = async () => {
        while (link.isUp && next < batch.length) {
          const q = batch[next++]!;
          await pushPaced(link, q.raw, q.id, q.hops, timeoutMs);
          sent++;
        }
      };
      await Promise.all(Array.from({ length: DRAIN_WINDOW }, worker));
    }
  } finally {
    link.draining = false;
  }
  return sent;
}

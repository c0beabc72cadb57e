import WebSocket from 'ws';
import type { NostrEvent } from '../../relay/src/nostr/event.js';

export interface PublishResult {
  okTrue: number;
  okFalse: number;
  unanswered: number;
  reasons: Map<string, number>;
  latenciesMs: number[];
  ms: number;
}

/**
 * Publishes events over `connections` WebSockets, each keeping at most `window` events awaiting their OK, and times
 * every publish→OK. Gives up on a connection that sees no OK for `stallMs`.
 */
export async function publishAll(url: string, events: NostrEvent[], connections: number, window: number, stallMs = 30_000): Promise<PublishResult> {
  const result: PublishResult = { okTrue: 0, okFalse: 0, unanswered: 0, reasons: new Map(), latenciesMs: [], ms: 0 };
  const shares: NostrEvent[][] = Array.from({ length: connections }, () => []);
  events.forEach((ev, i) => shares[i % connections]!.push(ev));
  const started = performance.now();
  await Promise.all(shares.map((share) => publishShare(url, share, window, stallMs, result)));
  result.ms = performance.now() - started;
  return result;
}

function publishShare(url: string, events: NostrEvent[], window: number, stallMs: number, result: PublishResult): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const sentAt = new Map<string, number>();
    let next = 0;
    let done = false;
    let lastOk = performance.now();
    const watchdog = setInterval(() => {
      if (performance.now() - lastOk > stallMs) finish();
    }, 500);
    const finish = (): void => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      result.unanswered += sentAt.size + (events.length - next);
      ws.terminate();
      resolve();
    };
    const pump = (): void => {
      while (next < events.length && sentAt.size < window && ws.readyState === WebSocket.OPEN) {
        const ev = events[next++]!;
        sentAt.set(ev.id, performance.now());
        ws.send(`["EVENT",${JSON.stringify(ev)}]`);
      }
      if (next >= events.length && sentAt.size === 0) finish();
    };
    ws.on('open', pump);
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as unknown[];
      if (msg[0] !== 'OK') return;
      const t0 = sentAt.get(msg[1] as string);
      if (t0 === undefined) return;
      sentAt.delete(msg[1] as string);
      lastOk = performance.now();
      result.latenciesMs.push(lastOk - t0);
      if (msg[2] === true) result.okTrue++;
      else {
        result.okFalse++;
        const reason = String(msg[3] ?? '').slice(0, 60);
        result.reasons.set(reason, (result.reasons.get(reason) ?? 0) + 1);
      }
      pump();
    });
    ws.on('error', (err) => {
      console.error(`connection error: ${err.message}`);
      finish();
    });
    ws.on('close', finish);
  });
}

import WebSocket from 'ws';
import type { VerifiedEvent } from 'nostr-tools/pure';

/** Publishes events over one connection with up to `window` awaiting their OK; rejects on any OK false. */
export async function publishPipelined(url: string, events: VerifiedEvent[], window = 200): Promise<void> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let done = 0;
      const pending = new Set<string>();
      const pump = () => {
        while (pending.size < window && next < events.length) {
          const e = events[next++]!;
          pending.add(e.id);
          ws.send(JSON.stringify(['EVENT', e]));
        }
        if (done === events.length) resolve();
      };
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as unknown[];
        if (frame[0] !== 'OK' || !pending.delete(frame[1] as string)) return;
        if (frame[2] !== true) return reject(new Error(`event refused: ${String(frame[3])}`));
        done++;
        pump();
      });
      ws.once('close', () => reject(new Error('relay closed the connection')));
      pump();
    });
  } finally {
    ws.removeAllListeners('close');
    ws.close();
  }
}

/** Splits the events over `connections` parallel pipelined publishers. */
export async function publishAll(url: string, events: VerifiedEvent[], connections = 4): Promise<void> {
  const slices = Array.from({ length: connections }, (_, i) => events.filter((_, j) => j % connections === i));
  await Promise.all(slices.map((s) => publishPipelined(url, s)));
}

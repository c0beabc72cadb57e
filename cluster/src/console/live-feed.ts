/**
 * The one snapshot stream: a single poller (about once a second, never two polls at once) whose result is pushed to
 * every connected browser as a server-sent event. N open tabs cost the cluster one poll, not N; the number of
 * streams is bounded, and polling stops when nobody is watching.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';

const MAX_BUFFERED = 1024 * 1024;

export interface FeedOptions {
  /** Builds the payload of one event (the snapshot plus whatever else the page shows live). */
  produce: () => Promise<unknown>;
  intervalMs: number;
  maxClients: number;
  logger: Logger;
}

export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private last: string | null = null;
  private lastAt = 0;
  private closed = false;

  constructor(private readonly o: FeedOptions) {}

  get size(): number {
    return this.clients.size;
  }

  /** Adds a stream; false when the bound is reached (the caller answers 503). */
  add(res: ServerResponse): boolean {
    if (this.closed || this.clients.size >= this.o.maxClients) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // The browser reconnects after this long if the stream breaks.
    res.write(`retry: 2000\n\n`);
    if (this.last) res.write(this.last);
    this.clients.add(res);
    res.once('close', () => this.clients.delete(res));
    if (!this.timer && !this.polling) void this.tick();
    return true;
  }

  /** The latest payload, polled now if older than maxAgeMs (GET /api/snapshot without a stream). */
  async latest(maxAgeMs: number): Promise<unknown> {
    if (this.last === null || Date.now() - this.lastAt > maxAgeMs) return this.o.produce();
    return JSON.parse(this.last.slice(this.last.indexOf('data: ') + 6));
  }

  /** Polls at once (after an action) instead of waiting for the next tick, so the page shows the effect sooner. */
  nudge(): void {
    // What was polled before the action is stale now, for GET /api/snapshot too.
    this.lastAt = 0;
    if (this.clients.size === 0 || this.polling) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.tick();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    this.polling = true;
    const started = Date.now();
    try {
      const payload = await this.o.produce();
      this.last = `event: snapshot\ndata: ${JSON.stringify(payload)}\n\n`;
      this.lastAt = Date.now();
      for (const res of this.clients) {
        // A tab that stopped reading (suspended, hostile) is dropped rather than buffered without end.
        if (res.writableLength > MAX_BUFFERED) {
          this.o.logger.warn({ buffered: res.writableLength }, 'live stream not reading: closed');
          this.clients.delete(res);
          res.destroy();
          continue;
        }
        res.write(this.last);
      }
    } catch (err) {
      this.o.logger.warn({ err }, 'snapshot failed');
    } finally {
      this.polling = false;
    }
    if (this.closed || this.clients.size === 0) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(100, this.o.intervalMs - (Date.now() - started)));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

/**
 * A proxied connection: a client endpoint, an upstream endpoint and one Pipe
 * per direction. Endpoints hide whether the bytes travel as raw tcp or as ws
 * messages, so every fault works on both kinds of link.
 */
import type { Chunk, ConnControl } from '../faults/contract.js';
import { Pipe, type Sink, type Source } from '../pipeline/pipe.js';
import type { Logger } from '../logger.js';
import { RespTracker } from '../protocols/resp-tracker.js';
import type { RespScanner } from '../protocols/resp.js';

export interface Endpoint extends Sink, Source {
  destroy(): void;
  /** A real RST where the transport allows it. */
  reset(): void;
}

export interface ConnectionOwner {
  readonly log: Logger;
  countBytes(dir: 'upstream' | 'downstream', n: number): void;
  untrack(conn: Connection): void;
  /** Count a protocol error of this connection's peer (metric and log). */
  protocolError(conn: Connection, source: string, why: string): void;
}

/** A connection whose peer closed cleanly gets this long for the other side to finish closing. */
const CLOSE_GRACE_MS = 60_000;

export class Connection implements ConnControl {
  readonly up: Pipe;
  readonly down: Pipe;
  private closed = { client: false, upstream: false };
  private finished = false;
  private graceTimer: NodeJS.Timeout | null = null;
  /** RESP bookkeeping (tcp links only): where injected Redis replies belong. */
  private readonly resp: RespTracker | null;

  constructor(
    readonly id: number,
    private readonly owner: ConnectionOwner,
    readonly client: Endpoint,
    readonly upstream: Endpoint,
    opts: { trackResp?: boolean } = {},
  ) {
    if (opts.trackResp) {
      const tracker = new RespTracker(
        (data) => this.down.push({ data, binary: false }),
        (why) => {
          owner.protocolError(this, 'redis_error', why);
          this.close(why);
        },
      );
      this.resp = tracker;
      const sink: Sink = {
        write: (c) => {
          tracker.observeCommands(c.data);
          return upstream.write(c);
        },
        onceDrain: (cb) => upstream.onceDrain(cb),
        end: () => upstream.end(),
      };
      this.up = new Pipe(client, sink, (n) => owner.countBytes('upstream', n));
    } else {
      this.resp = null;
      this.up = new Pipe(client, upstream, (n) => owner.countBytes('upstream', n));
    }
    this.down = new Pipe(upstream, client, (n) => owner.countBytes('downstream', n));
  }

  /** Data from the upstream enters the downstream pipe here (through the RESP tracker on tcp links). */
  fromUpstream(chunk: Chunk): void {
    if (this.resp) this.resp.fromServer(chunk.data);
    else this.down.push(chunk);
  }

  get isFinished(): boolean {
    return this.finished;
  }

  close(reason: string): void {
    this.owner.log.debug({ conn: this.id, reason }, 'closing connection');
    this.client.destroy();
    this.upstream.destroy();
    this.finish();
  }

  reset(reason: string): void {
    this.owner.log.debug({ conn: this.id, reason }, 'resetting connection');
    this.client.reset();
    this.upstream.reset();
    this.finish();
  }

  injectReply(data: Buffer): void {
    if (this.finished) return;
    if (this.resp) this.resp.inject(data);
    else this.down.push({ data, binary: false });
  }

  respScanner(): RespScanner | null {
    return this.resp?.commandScanner() ?? null;
  }

  /** A transport error on one side: the other side learns of it the same way (RST for RST). */
  onError(side: 'client' | 'upstream', err: NodeJS.ErrnoException): void {
    this.owner.log.debug({ conn: this.id, side, err: err.message, code: err.code }, 'connection error');
    const other = side === 'client' ? this.upstream : this.client;
    if (err.code === 'ECONNRESET') other.reset();
    else other.destroy();
  }

  onClose(side: 'client' | 'upstream'): void {
    this.closed[side] = true;
    if (this.closed.client && this.closed.upstream) return this.finish();
    const fromPipe = side === 'client' ? this.up : this.down;
    const other = side === 'client' ? this.upstream : this.client;
    if (!fromPipe.ended) {
      // Closed without a clean end: nothing more can flow, drop the other side.
      other.destroy();
      this.finish();
    } else {
      // Closed cleanly: let a delayed end (latency, slow_close) reach the other side first.
      this.graceTimer = setTimeout(() => this.close('close grace expired'), CLOSE_GRACE_MS);
      this.graceTimer.unref();
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.up.closeAll();
    this.down.closeAll();
    this.resp?.clear();
    this.owner.untrack(this);
  }
}

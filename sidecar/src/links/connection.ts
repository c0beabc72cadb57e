/**
 * A proxied connection: a client endpoint, an upstream endpoint and one Pipe
 * per direction. Endpoints hide whether the bytes travel as raw tcp or as ws
 * messages, so every fault works on both kinds of link.
 */
import type { Chunk, ConnControl, RespAttachment } from '../faults/contract.js';
import { Pipe, type Sink, type Source } from '../pipeline/pipe.js';
import type { Logger } from '../logger.js';
import { RespTracker } from '../protocols/resp-tracker.js';

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
  /**
   * RESP bookkeeping (tcp links only), alive only while a redis_error stage needs it or injected replies still
   * wait: a connection without one takes the fast path.
   */
  private resp: RespTracker | null = null;
  private respUsers = 0;

  constructor(
    readonly id: number,
    private readonly owner: ConnectionOwner,
    readonly client: Endpoint,
    readonly upstream: Endpoint,
    opts: { raw?: { client(b: Buffer): boolean; upstream(b: Buffer): boolean } } = {},
  ) {
    const sink: Sink = {
      write: (c) => {
        if (this.resp) this.resp.observeCommands(c.data);
        return upstream.write(c);
      },
      onceDrain: (cb) => upstream.onceDrain(cb),
      end: () => upstream.end(),
    };
    this.up = new Pipe(client, sink, (n) => owner.countBytes('upstream', n), opts.raw?.upstream);
    this.down = new Pipe(upstream, client, (n) => owner.countBytes('downstream', n), opts.raw?.client);
  }

  /** No stage and no RESP tracking in this direction: its bytes may go straight from socket to socket. */
  get fastUp(): boolean {
    return this.up.head === null && this.resp === null;
  }

  get fastDown(): boolean {
    return this.down.head === null && this.resp === null;
  }

  /** Data from the upstream enters the downstream pipe here (through the RESP tracker while there is one). */
  fromUpstream(chunk: Chunk): void {
    const resp = this.resp;
    if (!resp) return this.down.push(chunk);
    resp.fromServer(chunk.data);
    if (this.respUsers === 0 && resp.idle) this.resp = null;
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

  respAttach(): RespAttachment {
    this.respUsers++;
    if (!this.resp) {
      // Exact from byte 0 on a connection that has moved nothing yet; otherwise synchronise with a marker.
      const midStream = this.up.received > 0 || this.down.received > 0;
      this.resp = new RespTracker(
        (data) => this.down.push({ data, binary: false }),
        (why) => {
          this.owner.protocolError(this, 'redis_error', why);
          this.close(why);
        },
        midStream,
      );
      if (!midStream) return { mode: 'start' };
      const tracker = this.resp;
      return { mode: 'resync', marker: tracker.marker!.command, markerSent: () => (tracker.markerSent = true) };
    }
    const scanner = this.resp.commandScanner();
    if (scanner) return { mode: 'continue', scanner };
    // Another redis_error is synchronising (its marker places this one's replies too), or the stream is not RESP.
    return this.resp.enabled ? { mode: 'resync' } : { mode: 'start' };
  }

  respDetach(): void {
    if (this.respUsers > 0) this.respUsers--;
    // A marker never sent will never be answered: nothing to wait for.
    if (this.respUsers === 0 && this.resp && (this.resp.idle || (this.resp.marker && !this.resp.markerSent))) this.resp = null;
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

/**
 * tcp link: any byte stream (PostgreSQL, Redis). The upstream is dialled
 * asynchronously with a timeout, outside the accept path, so a dead upstream
 * never stalls other clients; the client is paused until the dial completes.
 *
 * Fast path: while a direction has no stage and no RESP tracking, each read is
 * written straight to the other socket (Connection.fastUp/fastDown, checked per
 * read), which is what Readable.pipe does, plus a byte count. A fault added or
 * removed between two reads switches the next read into or out of the chain;
 * one 'data' listener serves both, so there is no unpipe/re-listen window in
 * which a read could be lost or overtake another.
 *
 * The upstream socket reads into a buffer it reuses (Node's `onread`), not a
 * fresh 64 KiB allocation per read: see UpstreamReads for when the buffer is
 * given away instead of reused. One callback serves both paths, as above.
 */
import net from 'node:net';
import { Connection, type Endpoint } from './connection.js';
import { Link, type LinkContext } from './link.js';
import type { Pipe } from '../pipeline/pipe.js';
import type { Chunk } from '../faults/contract.js';

/**
 * Socket buffers: 256 KiB before write() reports congestion (Node's default is 16 KiB, which pauses a bulk
 * transfer every few reads). Above this the source is paused, so memory per connection stays bounded.
 */
const SOCKET_HIGH_WATER = 256 * 1024;

/** Upstream read buffer: starts small (idle connections hold little), grows to 64 KiB (Node's read size) when filled. */
const READ_MIN = 16 * 1024;
const READ_MAX = 64 * 1024;

/**
 * The upstream socket's reusable read buffer. A read is a view into it, so it may be reused only once nothing holds
 * that view: the fast path writes it to the client, and if the write did not complete at once (the client socket
 * keeps a reference until it does), the buffer is given to that write and a new one taken. A read that would be
 * queued behind a pending write is copied (or, if large, given away). The fault chain may hold chunks for long
 * (latency, freeze), so it always gets a copy.
 */
class UpstreamReads {
  buf = Buffer.allocUnsafe(READ_MIN);

  /** After a read of n bytes: grow a buffer the read filled. */
  grow(n: number): void {
    if (n === this.buf.length && n < READ_MAX) this.buf = Buffer.allocUnsafe(Math.min(READ_MAX, n * 2));
  }

  /** The current buffer now belongs to a pending write: read into a new one from now on. */
  giveAway(): void {
    this.buf = Buffer.allocUnsafe(this.buf.length);
  }
}

function tcpEndpoint(socket: net.Socket): Endpoint {
  return {
    write: (c: Chunk) => socket.write(c.data),
    onceDrain: (cb) => socket.once('drain', cb),
    end: () => socket.end(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    destroy: () => socket.destroy(),
    reset: () => {
      if (!socket.destroyed) socket.resetAndDestroy();
    },
  };
}

export class TcpLink extends Link {
  private server: net.Server | null = null;

  constructor(name: string, listen: string, upstream: string, enabled: boolean, ctx: LinkContext) {
    super(name, 'tcp', listen, upstream, enabled, ctx);
  }

  protected listenNow(): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: SOCKET_HIGH_WATER }, (s) => this.onClient(s));
      server.once('error', reject);
      server.listen({ host: this.listenAddr.host, port: this.listenAddr.port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err: err.message }, 'listener error'));
        this.server = server;
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  protected closeListener(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  /** The guard without a closure per read (the fast path runs once per socket read). */
  private fast(conn: Connection, pipe: Pipe, d: Buffer): void {
    try {
      pipe.pushRaw(d);
    } catch (err) {
      this.linkFailure(conn, err);
    }
  }

  private onClient(client: net.Socket): void {
    if (this.interceptAccept(client)) return;
    const id = this.nextConnId();
    const acceptedAt = this.acceptEpoch();
    client.pause();
    const earlyError = (err: Error) => this.log.debug({ conn: id, err: err.message }, 'client error before upstream connected');
    client.on('error', earlyError);
    // net.Socket passes these stream options on (Node's types omit them).
    const reads = new UpstreamReads();
    let onRead: (n: number, buf: Buffer) => void = () => {};
    const opts = {
      host: this.upstreamAddr.host,
      port: this.upstreamAddr.port,
      allowHalfOpen: true,
      noDelay: true,
      readableHighWaterMark: SOCKET_HIGH_WATER,
      writableHighWaterMark: SOCKET_HIGH_WATER,
      onread: {
        buffer: () => reads.buf,
        callback: (n: number, buf: Uint8Array) => {
          onRead(n, buf as Buffer);
          return true; // pausing is the pipe's job (socket.pause() works on onread sockets)
        },
      },
    };
    const upstream = net.connect(opts);
    // Nothing is read before the connection below exists to take it (resumed once it does).
    upstream.pause();
    const timer = setTimeout(() => upstream.destroy(new Error(`dial timeout after ${this.ctx.dialTimeoutMs} ms`)), this.ctx.dialTimeoutMs);
    const failed = (err: Error) => {
      clearTimeout(timer);
      this.dialFailed(err);
      // The client learns the upstream is unreachable the way a refused connection looks.
      if (!client.destroyed) client.resetAndDestroy();
    };
    upstream.once('error', failed);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.off('error', failed);
      client.off('error', earlyError);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      const raw = { client: (b: Buffer) => client.write(b), upstream: (b: Buffer) => upstream.write(b) };
      const conn = new Connection(id, this, tcpEndpoint(client), tcpEndpoint(upstream), { raw });
      const { up, down } = conn;
      // Every handler is guarded: whatever a fault or a hostile peer provokes closes this connection only.
      client.on('data', (d: Buffer) => {
        if (conn.fastUp) this.fast(conn, up, d);
        else this.guard(conn, () => up.push({ data: d, binary: false }));
      });
      onRead = (n, buf) => {
        if (conn.fastDown) {
          if (client.writableLength > 0) {
            // The write would be queued: do not lend it the buffer reads reuse.
            if (n >= buf.length >> 1) {
              reads.giveAway();
              this.fast(conn, down, buf.subarray(0, n));
            } else this.fast(conn, down, Buffer.from(buf.subarray(0, n)));
          } else {
            this.fast(conn, down, buf.subarray(0, n));
            // Not written at once: the client socket holds the view until it is.
            if (client.writableLength > 0) reads.giveAway();
          }
        } else {
          const data = Buffer.from(buf.subarray(0, n));
          this.guard(conn, () => conn.fromUpstream({ data, binary: false }));
        }
        reads.grow(n);
      };
      client.on('end', () => this.guard(conn, () => conn.up.end()));
      upstream.on('end', () => this.guard(conn, () => conn.down.end()));
      client.on('error', (err) => this.guard(conn, () => conn.onError('client', err)));
      upstream.on('error', (err) => this.guard(conn, () => conn.onError('upstream', err)));
      client.on('close', () => this.guard(conn, () => conn.onClose('client')));
      upstream.on('close', () => this.guard(conn, () => conn.onClose('upstream')));
      this.guard(conn, () => this.track(conn, acceptedAt));
      client.resume();
      upstream.resume();
    });
  }
}

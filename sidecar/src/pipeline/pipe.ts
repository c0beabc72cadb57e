/**
 * One direction of one connection: source → stage → stage → ... → sink.
 *
 *     client socket ──push()──▶ [fault A] ─emit─▶ [fault B] ─emit─▶ deliver() ──▶ upstream socket
 *         ▲                                                                            │
 *         └──────────── pause()/resume(): inflight bytes and sink drain ◀──────────────┘
 *
 * Stages form a linked list so a fault can be added or removed while data is
 * in flight: a removed stage keeps its `next` pointer, flushes what it holds
 * into it synchronously, and is unlinked - nothing waits. With no stage the
 * pipe is a plain write with backpressure (the fast path); on tcp, pushRaw()
 * writes a socket's read straight to the other socket, as Readable.pipe does.
 * Both paths take the source's reads in order and share one backpressure
 * state, so switching between them (a fault added or removed between two
 * reads) neither loses nor reorders a byte.
 */
import type { Chunk, Stage } from '../faults/contract.js';

export interface Sink {
  /** false = the sink is congested; call onDrain before writing a lot more. */
  write(chunk: Chunk): boolean;
  onceDrain(cb: () => void): void;
  end(): void;
}

export interface Source {
  pause(): void;
  resume(): void;
}

/** Bytes held inside stages (latency, freeze...) before the source is paused: bounded buffers. */
const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;

export class StageNode {
  next: StageNode | null = null;
  stage!: Stage;
  endSeen = false;
  /** The fault's place in the order of addition: stages stay in that order, also when re-created by an update. */
  constructor(readonly faultName: string, readonly order: number) {}
}

export class Pipe {
  head: StageNode | null = null;
  private inflight = 0;
  private sinkBlocked = false;
  private pausedBy = 0; // bit 1: sink, bit 2: inflight
  ended = false;
  sinkEnded = false;
  bytes = 0;
  /** Bytes the source gave this pipe (delivered, held or dropped). */
  received = 0;

  constructor(
    private readonly source: Source,
    private readonly sink: Sink,
    private readonly onBytes: (n: number) => void,
    /** The sink's raw byte writer (tcp): the fast path skips the Chunk wrapper. */
    private readonly raw?: (b: Buffer) => boolean,
  ) {}

  /** The fast path: only for a pipe with no stage (the caller checks head === null) and a raw writer. */
  pushRaw(data: Buffer): void {
    const n = data.length;
    this.received += n;
    if (this.sinkEnded) return;
    this.bytes += n;
    this.onBytes(n);
    if (!this.raw!(data) && !this.sinkBlocked) this.blockOnSink();
  }

  push(chunk: Chunk): void {
    this.received += chunk.data.length;
    if (this.head === null) {
      this.deliver(chunk);
      return;
    }
    this.inflight += chunk.data.length;
    this.head.stage.chunk(chunk);
    if (this.inflight > HIGH_WATER) this.setPaused(2, true);
  }

  /** Source finished (FIN or ws close). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.head === null) this.endSink();
    else this.endAt(this.head);
  }

  /** Emit function for a node: to the next stage, else to the sink. */
  emitFrom(node: StageNode, chunk: Chunk): void {
    if (node.next) node.next.stage.chunk(chunk);
    else this.deliverHeld(chunk);
  }

  endFrom(node: StageNode): void {
    if (node.next) this.endAt(node.next);
    else this.endSink();
  }

  dropped(chunk: Chunk): void {
    this.release(chunk.data.length);
  }

  private endAt(node: StageNode): void {
    if (node.endSeen) return;
    node.endSeen = true;
    if (node.stage.end) node.stage.end();
    else this.endFrom(node);
  }

  private endSink(): void {
    if (this.sinkEnded) return;
    this.sinkEnded = true;
    this.sink.end();
  }

  private deliverHeld(chunk: Chunk): void {
    this.release(chunk.data.length);
    this.deliver(chunk);
  }

  private deliver(chunk: Chunk): void {
    if (this.sinkEnded) return;
    this.bytes += chunk.data.length;
    this.onBytes(chunk.data.length);
    if (!this.sink.write(chunk) && !this.sinkBlocked) this.blockOnSink();
  }

  private blockOnSink(): void {
    this.sinkBlocked = true;
    this.setPaused(1, true);
    this.sink.onceDrain(() => {
      this.sinkBlocked = false;
      this.setPaused(1, false);
    });
  }

  private release(n: number): void {
    this.inflight = Math.max(0, this.inflight - n);
    if (this.pausedBy & 2 && this.inflight < LOW_WATER) this.setPaused(2, false);
  }

  private setPaused(bit: number, on: boolean): void {
    const before = this.pausedBy;
    this.pausedBy = on ? before | bit : before & ~bit;
    if (before === 0 && this.pausedBy !== 0) this.source.pause();
    else if (before !== 0 && this.pausedBy === 0) this.source.resume();
  }

  /**
   * Link a stage in at its fault's place: faults act in the order they were added, as in Toxiproxy (a new fault
   * goes last; a stage re-created by an update goes back where its fault was).
   */
  insert(node: StageNode): void {
    // A pipe that already ended must not make the new stage wait for an end that never comes.
    if (this.ended) node.endSeen = true;
    if (this.head === null || this.head.order > node.order) {
      node.next = this.head;
      this.head = node;
      return;
    }
    let n = this.head;
    while (n.next && n.next.order <= node.order) n = n.next;
    node.next = n.next;
    n.next = node;
  }

  has(faultName: string): boolean {
    for (let n = this.head; n; n = n.next) if (n.faultName === faultName) return true;
    return false;
  }

  /** Unlink the stage of a removed fault; its held data flows on to what followed it. */
  remove(faultName: string): void {
    let prev: StageNode | null = null;
    let n = this.head;
    while (n && n.faultName !== faultName) {
      prev = n;
      n = n.next;
    }
    if (!n) return;
    if (prev) prev.next = n.next;
    else this.head = n.next;
    // Flush after unlinking: later chunks bypass it, held ones go to its old next, in order.
    n.stage.close(true);
    if (this.head === null) this.release(Number.MAX_SAFE_INTEGER);
  }

  /** Connection gone: stop every stage's timers, drop what they hold. */
  closeAll(): void {
    for (let n = this.head; n; n = n.next) n.stage.close(false);
    this.head = null;
  }
}

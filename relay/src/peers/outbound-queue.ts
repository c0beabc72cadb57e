/**
 * Frames waiting for a peer that is down, oldest first, bounded. On overflow the queue is emptied and marked:
 * the events are not lost, the anti-entropy run on the next link up finds them (cheaper than keeping them all).
 */
export interface QueuedFrame {
  id: string;
  /** The event's JSON. */
  raw: string;
  /** Hops it will have travelled on arrival. */
  hops: number;
}

export class OutboundQueue {
  private frames: QueuedFrame[] = [];
  /** Set when frames were dropped; cleared by the next successful reconciliation. */
  overflowed = false;
  dropped = 0;

  constructor(readonly capacity: number) {}

  get depth(): number {
    return this.frames.length;
  }

  /** Returns false when the frame did not fit (the queue overflowed). */
  push(frame: QueuedFrame): boolean {
    if (this.frames.length >= this.capacity) {
      this.dropped += this.frames.length + 1;
      this.frames = [];
      this.overflowed = true;
      return false;
    }
    this.frames.push(frame);
    return true;
  }

  drain(): QueuedFrame[] {
    const out = this.frames;
    this.frames = [];
    return out;
  }

  clear(): void {
    this.frames = [];
  }
}

/**
 * An ordered release queue for stages that hold data until a time (latency,
 * bandwidth, slicer). Items leave in arrival order, never before their due
 * time on the monotonic clock (performance.now): Node timers can fire up to
 * ~1 ms early against it, so a timer that fires early is re-armed for the
 * rest. The end-of-stream marker leaves after the data before it. flush()
 * releases everything at once (the fault was removed).
 */
import { performance } from 'node:perf_hooks';
import type { Chunk } from '../faults/contract.js';


interface Item {
  chunk: Chunk | null; // null = end of stream
  due: number;
}

export class TimedQueue {
  private items: Item[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastDue = 0;

  constructor(private readonly out: { emit(c: Chunk): void; end(): void }) {}

  static now(): number {
    return performance.now();
  }

  /** Queue a chunk due at `due` (ms, performance.now clock), never before earlier items. */
  push(chunk: Chunk | null, due: number): void {
    this.lastDue = Math.max(due, this.lastDue);
    this.items.push({ chunk, due: this.lastDue });
    if (this.items.length - this.head === 1) this.schedule();
  }

  /** Due time of the last queued item (for rate-based stages that space items out). */
  get tail(): number {
    return this.lastDue;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  private schedule(): void {
    if (this.timer || this.head >= this.items.length) return;
    const wait = this.items[this.head]!.due - performance.now();
    if (wait <= 0) {
      this.release();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.release();
    }, Math.max(1, Math.ceil(wait)));
  }

  private release(): void {
    const now = performance.now();
    while (this.head < this.items.length && this.items[this.head]!.due <= now) this.out_(this.items[this.head++]!);
    this.compact();
    // Re-armed here when the timer fired before the head was due.
    this.schedule();
  }

  private out_(item: Item): void {
    if (item.chunk) this.out.emit(item.chunk);
    else this.out.end();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  flush(): void {
    this.cancel();
    const items = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    for (const it of items) this.out_(it);
  }

  clear(): void {
    this.cancel();
    this.items = [];
    this.head = 0;
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

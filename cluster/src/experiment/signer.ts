/**
 * Signs the workload's events on worker threads, so that the runner's own event loop (observer, readers, sync
 * probe, timers) is not what limits the rate or skews the times it measures.
 */
import { Worker } from 'node:worker_threads';
import type { EventTemplate } from 'nostr-tools/pure';
import { bytesToHex } from 'nostr-tools/utils';
import type { MixedEvent } from './event-mix.js';

interface Waiting {
  resolve: (e: MixedEvent) => void;
  reject: (err: Error) => void;
}

export class SignerPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Waiting>();
  private seq = 0;
  private next = 0;
  private batches: Array<Array<{ id: number; key: string; template: EventTemplate }>>;
  private flushScheduled = false;

  constructor(size: number) {
    this.workers = Array.from({ length: Math.max(1, size) }, () => {
      const w = new Worker(new URL('./signer-worker.js', import.meta.url));
      w.on('message', (signed: Array<{ id: number; event: MixedEvent }>) => {
        for (const s of signed) {
          this.waiting.get(s.id)?.resolve(s.event);
          this.waiting.delete(s.id);
        }
      });
      w.on('error', (err) => {
        for (const wt of this.waiting.values()) wt.reject(err);
        this.waiting.clear();
      });
      w.unref();
      return w;
    });
    this.batches = this.workers.map(() => []);
  }

  /** Events waiting for their signature. */
  get backlog(): number {
    return this.waiting.size;
  }

  sign(template: EventTemplate, key: Uint8Array): Promise<MixedEvent> {
    const id = ++this.seq;
    const promise = new Promise<MixedEvent>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.batches[this.next]!.push({ id, key: bytesToHex(key), template });
    this.next = (this.next + 1) % this.workers.length;
    // One message per worker per turn of the event loop, not one per event.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.batches.forEach((batch, i) => {
          if (batch.length > 0) this.workers[i]!.postMessage(batch);
        });
        this.batches = this.workers.map(() => []);
      });
    }
    return promise;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

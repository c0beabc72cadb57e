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

// Loaded from source (tsx, in the tests) the worker still runs the compiled copy: a worker thread does not inherit
// the TypeScript loader. `make test` builds first.
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/experiment/signer-worker.js', import.meta.url)
  : new URL('./signer-worker.js', import.meta.url);

export class SignerPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Waiting>();
  private seq = 0;
  private next = 0;
  private batches: Array<Array<{ id: number; key: string; template: EventTemplate }>>;
  private flushScheduled = false;

  constructor(size: number) {
    this.workers = Array.from({ length: Math.max(1, size) }, () => {
      // Plain JavaScript: no inherited loader flags (a test runner's TypeScript loader made start-up take seconds).
      const w = new Worker(WORKER_URL, { execArgv: [] });
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
      return w;
    });
    this.batches = this.workers.map(() => []);
  }

  /** Resolves once every thread has signed one event: the workload's clock starts after the threads are up. */
  async ready(): Promise<void> {
    const key = new Uint8Array(32).fill(1);
    await Promise.all(this.workers.map(() => this.sign({ kind: 1, created_at: 0, tags: [], content: 'warm-up' }, key)));
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

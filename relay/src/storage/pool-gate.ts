import { StorageError } from './types.js';

interface Waiter {
  grant(): void;
  fail(err: StorageError): void;
}

/**
 * A FIFO of callers waiting for one of `permits` connections, in front of a pg Pool of the same size, so the pool
 * itself never queues. Unlike pg-pool's own queue, a waiter whose AbortSignal fires (its subscription was closed,
 * its client went away, its deadline passed) leaves the queue at once instead of keeping its place, and the queue is
 * bounded: past `maxWaiting` a caller is refused immediately (`pool-exhausted`) rather than queued.
 */
export class PoolGate {
  private inUse = 0;
  private readonly waiting = new Set<Waiter>();

  constructor(
    private readonly permits: number,
    private readonly maxWaiting: number,
    private readonly timeoutMs: number,
  ) {}

  get waitingCount(): number {
    return this.waiting.size;
  }

  get inUseCount(): number {
    return this.inUse;
  }

  /** Resolves with a release function once a permit is free; rejects `aborted`, or `pool-exhausted` (queue full, or waited timeoutMs). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new StorageError('query aborted', 'aborted'));
    if (this.inUse < this.permits) {
      this.inUse++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.size >= this.maxWaiting) {
      return Promise.reject(new StorageError(`read queue is full (${this.maxWaiting} waiting)`, 'pool-exhausted'));
    }
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.waiting.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: () => {
          done();
          resolve(this.releaser());
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      const onAbort = (): void => waiter.fail(new StorageError('query aborted while waiting for a connection', 'aborted'));
      const timer = setTimeout(
        () => waiter.fail(new StorageError(`timeout exceeded when trying to connect (waited ${this.timeoutMs} ms for a read connection)`, 'pool-exhausted')),
        this.timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.add(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.values().next();
      // The permit passes straight to the oldest waiter; inUse only drops when nobody is waiting.
      if (!next.done) next.value.grant();
      else this.inUse--;
    };
  }
}

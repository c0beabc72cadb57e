/**
 * The steady-state probe that runs throughout an experiment and aborts it when the system deviates beyond the
 * hypothesis' abort bounds: a node not answering /health for `node_down_for`, or more than `max_error_ratio` of the
 * publishes of the last `window` failing. Every wait of the experiment goes through `wait()`, which rejects with
 * `Aborted` as soon as a bound is crossed, so the run stops at once and rolls back.
 */
import type { AbortBounds } from './hypothesis.js';
import type { Observer } from './observer.js';
import type { Attempt } from './workload.js';

export class Aborted extends Error {}

const CHECK_EVERY_MS = 250;
/** Fewer publishes than this in the window say nothing about an error ratio. */
const MIN_WINDOW_ATTEMPTS = 20;

export class Guard {
  reason: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly waiters = new Set<(err: Aborted) => void>();

  constructor(
    private readonly bounds: AbortBounds,
    private readonly observer: Observer,
    private readonly nodes: string[],
    private readonly attempts: () => Attempt[],
    /** Nodes expected to be down for now (a relay killed on purpose, until its restart deadline). */
    private readonly excused: () => Set<string> = () => new Set(),
  ) {}

  start(): void {
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(): void {
    if (this.reason) return;
    const now = Date.now();
    for (const node of this.nodes) {
      if (this.excused().has(node)) continue;
      const own = this.observer.of(node);
      let downFrom: number | null = null;
      for (const s of own) downFrom = s.up ? null : downFrom ?? s.t;
      if (downFrom !== null && now - downFrom >= this.bounds.nodeDownForMs) {
        return this.abort(`relay-${node} has not answered /health for ${((now - downFrom) / 1000).toFixed(1)} s (abort bound ${this.bounds.nodeDownForMs / 1000} s)`);
      }
    }
    if (this.bounds.maxErrorRatio < 1) {
      const recent = this.attempts().filter((a) => a.doneAt !== null && a.doneAt >= now - this.bounds.windowMs);
      const failed = recent.filter((a) => a.outcome !== 'acked').length;
      if (recent.length >= MIN_WINDOW_ATTEMPTS && failed / recent.length > this.bounds.maxErrorRatio) {
        return this.abort(`${failed} of the last ${recent.length} publishes failed within ${this.bounds.windowMs / 1000} s (abort bound: more than ${(this.bounds.maxErrorRatio * 100).toFixed(0)} %)`);
      }
    }
  }

  abort(reason: string): void {
    if (this.reason) return;
    this.reason = reason;
    for (const w of this.waiters) w(new Aborted(reason));
    this.waiters.clear();
  }

  /** Sleeps ms, or rejects with Aborted the moment the run is aborted. */
  wait(ms: number): Promise<void> {
    if (this.reason) return Promise.reject(new Aborted(this.reason));
    return new Promise((resolveWait, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(onAbort);
        resolveWait();
      }, ms);
      const onAbort = (err: Aborted) => {
        clearTimeout(timer);
        reject(err);
      };
      this.waiters.add(onAbort);
    });
  }

  /** Throws Aborted if the run has been aborted (between steps that do not wait). */
  throwIfAborted(): void {
    if (this.reason) throw new Aborted(this.reason);
  }
}

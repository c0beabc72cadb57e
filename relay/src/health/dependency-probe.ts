import type { Logger } from 'pino';

export type DependencyState = 'up' | 'down';

/** What `raceDown` resolves with when the dependency went down (or the time ran out) before the work settled. */
export const DEPENDENCY_DOWN: unique symbol = Symbol('dependency down');

export interface DependencyStatus {
  state: DependencyState;
  since: string;
  lastError?: string;
  failures: number;
}

/** Consecutive probe timeouts that declare a dependency down (an error does at once). */
export const TIMEOUTS_TO_DOWN = 2;

class ProbeTimeout extends Error {}

/** Our own deadline, or the probe's (a StorageError with code 'timeout', as the PostgreSQL ping throws). */
function isTimeout(err: unknown): boolean {
  return err instanceof ProbeTimeout || (err instanceof Error && (err as { code?: unknown }).code === 'timeout');
}

/**
 * Probes one dependency (PostgreSQL or Redis) on an interval and on demand, and tells listeners when its
 * state flips. `reportFailure` lets the data path flag an outage at once instead of waiting for the next probe.
 */
export class DependencyProbe {
  private state: DependencyState = 'up';
  private since = Date.now();
  private lastError: string | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  /** Probes in a row that timed out (rather than failed): one alone is a busy moment, not an outage. */
  private timeouts = 0;
  private readonly listeners: Array<(state: DependencyState, previous: DependencyState) => void> = [];
  private readonly failureListeners: Array<(err: unknown) => void> = [];
  /** Callers of raceDown still waiting; each removes itself when its work settles, so nothing accumulates. */
  private readonly downWaiters = new Set<() => void>();
  private readonly timeoutMs: number;

  /**
   * `timeoutMs` bounds one probe (default: the interval): a dependency that stops answering without closing the
   * socket (a network partition) must count as down within interval + timeout, not after a client-side timeout.
   */
  constructor(
    readonly name: string,
    private readonly probe: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly log: Logger,
    timeoutMs?: number,
  ) {
    this.timeoutMs = timeoutMs ?? intervalMs;
  }

  /** Told about every failed probe and reported failure (error metrics). */
  onFailure(listener: (err: unknown) => void): void {
    this.failureListeners.push(listener);
  }

  /**
   * Waits for `work`, but resolves DEPENDENCY_DOWN as soon as the dependency is declared down (or after `timeoutMs`):
   * the data path must not wait out client-side timeouts on a dependency the probe already knows is gone. The work
   * is not cancelled; its late result is ignored (a late rejection is observed here, never unhandled).
   */
  raceDown<T>(work: Promise<T>, timeoutMs?: number): Promise<T | typeof DEPENDENCY_DOWN> {
    if (this.state === 'down') {
      work.catch(() => undefined); // the caller is told DOWN; a failure of the abandoned work changes nothing
      return Promise.resolve(DEPENDENCY_DOWN);
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (): void => {
        this.downWaiters.delete(onDown);
        clearTimeout(timer);
      };
      const onDown = (): void => {
        settle();
        resolve(DEPENDENCY_DOWN);
      };
      this.downWaiters.add(onDown);
      if (timeoutMs !== undefined) timer = setTimeout(onDown, timeoutMs);
      work.then(
        (value) => {
          settle();
          resolve(value);
        },
        (err: unknown) => {
          settle();
          reject(err);
        },
      );
    });
  }

  onChange(listener: (state: DependencyState, previous: DependencyState) => void): void {
    this.listeners.push(listener);
  }

  get current(): DependencyState {
    return this.state;
  }

  status(): DependencyStatus {
    return { state: this.state, since: new Date(this.since).toISOString(), failures: this.failures, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  /** Milliseconds spent in the current state. */
  elapsedInState(now = Date.now()): number {
    return now - this.since;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Runs one probe now (skipped if one is already running). */
  async check(): Promise<DependencyState> {
    if (this.probing) return this.state;
    this.probing = true;
    let timer: NodeJS.Timeout | undefined;
    const attempt = this.probe();
    const deadline = new Promise<never>((_, reject) => {
      // Decide in the check phase, after this loop turn's I/O: when the event loop was busy, the answer may be
      // sitting in the socket already, and a late timer alone must not declare the dependency down.
      timer = setTimeout(() => setImmediate(() => reject(new ProbeTimeout(`${this.name} probe timed out after ${this.timeoutMs} ms`))), this.timeoutMs);
    });
    try {
      await Promise.race([attempt, deadline]);
      this.timeouts = 0;
      this.set('up');
    } catch (err) {
      // A probe that lost the race may still settle; observe it so a late rejection is not unhandled.
      attempt.catch((late: unknown) => this.log.debug({ err: late, dependency: this.name }, 'late probe failure'));
      this.lastError = (err as Error).message;
      this.notifyFailure(err);
      // An error (refused, reset, closed) is an outage now. A timeout is one only when the next probe times out too:
      // on a CPU-starved machine one ping answered late flipped the relay into degraded mode while PostgreSQL was
      // fine. A dependency that stops answering is still down within two intervals plus two timeouts.
      if (!isTimeout(err) || ++this.timeouts >= TIMEOUTS_TO_DOWN) this.set('down');
      else this.log.warn({ dependency: this.name, error: this.lastError }, `${this.name} probe timed out once; probing again before declaring it down`);
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
    return this.state;
  }

  /** The data path saw a connection-level error: mark down now; the probe will see the recovery. */
  reportFailure(err: unknown): void {
    this.lastError = (err as Error)?.message ?? String(err);
    this.notifyFailure(err);
    this.set('down');
  }

  private notifyFailure(err: unknown): void {
    for (const listener of this.failureListeners) listener(err);
  }

  private set(state: DependencyState): void {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.since = Date.now();
    if (state === 'down') {
      this.failures++;
      this.log.error({ dependency: this.name, error: this.lastError }, `${this.name} unavailable`);
      for (const wake of [...this.downWaiters]) wake();
    }
    for (const listener of this.listeners) listener(state, previous);
  }
}

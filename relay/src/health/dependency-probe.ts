import type { Logger } from 'pino';

export type DependencyState = 'up' | 'down';

export interface DependencyStatus {
  state: DependencyState;
  since: string;
  lastError?: string;
  failures: number;
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
  private readonly listeners: Array<(state: DependencyState, previous: DependencyState) => void> = [];

  constructor(
    readonly name: string,
    private readonly probe: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

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
    try {
      await this.probe();
      this.set('up');
    } catch (err) {
      this.lastError = (err as Error).message;
      this.set('down');
    } finally {
      this.probing = false;
    }
    return this.state;
  }

  /** The data path saw a connection-level error: mark down now; the probe will see the recovery. */
  reportFailure(err: unknown): void {
    this.lastError = (err as Error)?.message ?? String(err);
    this.set('down');
  }

  private set(state: DependencyState): void {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.since = Date.now();
    if (state === 'down') {
      this.failures++;
      this.log.error({ dependency: this.name, error: this.lastError }, `${this.name} unavailable`);
    }
    for (const listener of this.listeners) listener(state, previous);
  }
}

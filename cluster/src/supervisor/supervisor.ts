/**
 * Keeps the cluster's relays and sidecars running the way systemd's `Restart=always` would: any exit that we did
 * not ask for (crash, SIGKILL, clean exit) is followed by a restart after RESTART_DELAY_MS. Output goes to one log
 * file per process; the live pids and restart counts go to processes.json for `make status` and `make chaos-crash`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Logger } from 'pino';
import { writeJsonAtomic, type ProcessSpec, type ProcessStatus } from '../state.js';

/** systemd's RestartSec for our units (deploy/systemd) is 1 s as well. */
export const RESTART_DELAY_MS = 1000;
const STOP_TIMEOUT_MS = 10_000;

interface Managed {
  spec: ProcessSpec;
  child: ChildProcess | null;
  status: ProcessStatus;
  exited: Promise<void> | null;
  restartTimer: NodeJS.Timeout | null;
}

export class Supervisor {
  private readonly managed: Managed[];
  private stopping = false;

  constructor(specs: ProcessSpec[], private readonly stateFile: string, private readonly log: Logger) {
    this.managed = specs.map((spec) => ({
      spec,
      child: null,
      exited: null,
      restartTimer: null,
      status: { name: spec.name, pid: null, running: false, restarts: 0, startedAt: null, lastExit: null },
    }));
  }

  start(): void {
    for (const m of this.managed) this.launch(m);
    this.persist();
  }

  private launch(m: Managed): void {
    const out = openSync(m.spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(m.spec.command, m.spec.args, { env: { ...process.env, ...m.spec.env }, stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    m.child = child;
    m.status.pid = child.pid ?? null;
    m.status.running = child.pid !== undefined;
    m.status.startedAt = new Date().toISOString();
    this.log.info({ process: m.spec.name, pid: child.pid, restarts: m.status.restarts }, 'process started');
    m.exited = new Promise((resolveExit) => {
      child.once('error', (err) => this.log.error({ process: m.spec.name, err: err.message }, 'process failed to spawn'));
      child.once('exit', (code, signal) => {
        m.status.running = false;
        m.status.pid = null;
        m.status.lastExit = { code, signal, at: new Date().toISOString() };
        if (!this.stopping) {
          this.log.warn({ process: m.spec.name, code, signal, restartInMs: RESTART_DELAY_MS }, 'process exited; restarting');
          m.restartTimer = setTimeout(() => {
            m.restartTimer = null;
            if (this.stopping) return;
            m.status.restarts++;
            this.launch(m);
            this.persist();
          }, RESTART_DELAY_MS);
        } else {
          this.log.info({ process: m.spec.name, code, signal }, 'process stopped');
        }
        this.persist();
        resolveExit();
      });
    });
  }

  private persist(): void {
    try {
      writeJsonAtomic(this.stateFile, this.managed.map((m) => m.status));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot write process state');
    }
  }

  /** Relays first (they drain into their dependencies), then the sidecars that carry those dependencies. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const m of this.managed) if (m.restartTimer) clearTimeout(m.restartTimer);
    for (const kind of ['relay', 'sidecar'] as const) {
      await Promise.all(this.managed.filter((m) => m.spec.kind === kind).map((m) => this.stopOne(m)));
    }
    this.persist();
  }

  private async stopOne(m: Managed): Promise<void> {
    const child = m.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || !m.exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.log.warn({ process: m.spec.name }, 'process did not stop in time; SIGKILL');
      child.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    await m.exited;
    clearTimeout(timer);
  }
}

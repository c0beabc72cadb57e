/**
 * Runs a profile's schedule on this sidecar: each step starts after its
 * offset, lasts its duration, and repeats at its interval. Entries for other
 * nodes, or whose link selector matches no link here, are skipped and
 * reported. Clearing the profile cancels timers and removes its faults.
 *
 * The report says what is true: every entry is checked against each link it
 * targets before anything is applied; the steps due at once are installed
 * before the report is built from what was installed; if any of them cannot
 * be installed, nothing of the profile stays and the apply fails. A later
 * step that fails when its time comes is logged and kept in the step's
 * `failures` (GET /profiles).
 */
import type { Link } from '../links/link.js';
import { FaultError } from '../faults/index.js';
import type { Logger } from '../logger.js';
import type { Profile, ProfileFault, ProfileStep } from './profile.js';

export interface ProfileHost {
  readonly links: Map<string, Link>;
  readonly log: Logger;
  readonly opts: { node: string };
}

export interface ApplyReport {
  profile: string;
  /** Installed now, or checked and scheduled (then also listed in `scheduled`). */
  targets: Array<{ fault: string; links: string[] }>;
  skipped: Array<{ fault: string; reason: string }>;
  scheduled: Array<{ fault: string; links: string[]; in_ms: number }>;
}

/** Failures kept per step for GET /profiles. */
const MAX_FAILURES = 20;

export interface Failure {
  fault: string;
  link: string;
  error: string;
  at: string;
}

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

interface StepState {
  step: ProfileStep;
  runs: number;
  active: boolean;
  nextAt: number | null;
  timers: Set<NodeJS.Timeout>;
  placed: Array<{ link: string; fault: string }>;
  failures: Failure[];
}

export class ProfileRunner {
  private readonly states: StepState[];
  private readonly log: Logger;
  private startedAt = 0;
  private stopped = false;

  constructor(readonly profile: Profile, private readonly host: ProfileHost) {
    this.log = host.log.child({ component: 'profile', profile: profile.name });
    this.states = profile.steps.map((step) => ({ step, runs: 0, active: false, nextAt: null, timers: new Set(), placed: [], failures: [] }));
  }

  private targets(f: ProfileFault): string[] | string {
    if (f.nodes && !f.nodes.includes(this.host.opts.node)) return `for nodes ${f.nodes.join(', ')}, this is ${this.host.opts.node}`;
    const res = f.links.map(globToRegExp);
    const names = [...this.host.links.keys()].filter((n) => res.some((r) => r.test(n)));
    return names.length ? names : `no link matches ${f.links.join(', ')}`;
  }

  private checked: ApplyReport | null = null;

  /** Check every entry against each link it targets, installing nothing (throws a FaultError naming the entry). */
  check(): ApplyReport {
    const report: ApplyReport = { profile: this.profile.name, targets: [], skipped: [], scheduled: [] };
    for (const st of this.states) {
      for (const f of st.step.faults) {
        const t = this.targets(f);
        if (typeof t === 'string') {
          report.skipped.push({ fault: f.input.name!, reason: t });
          continue;
        }
        for (const linkName of t) {
          try {
            this.host.links.get(linkName)!.checkFault({ ...f.input });
          } catch (err) {
            throw new FaultError(`profile ${this.profile.name}: ${f.input.name} on ${linkName}: ${(err as Error).message}`, err instanceof FaultError ? err.status : 400);
          }
        }
        if (st.step.at !== 0) report.scheduled.push({ fault: f.input.name!, links: t, in_ms: st.step.at });
      }
    }
    this.checked = report;
    return report;
  }

  start(): ApplyReport {
    this.startedAt = Date.now();
    // A step must not fail at its time for a reason known now.
    const report = this.checked ?? this.check();
    // Steps due at once are installed before the API answers, so the reply reflects the new state.
    const failed: Failure[] = [];
    for (const st of this.states) if (st.step.at === 0) failed.push(...this.run(st));
    if (failed.length > 0) {
      this.stop();
      const first = failed[0]!;
      throw new FaultError(
        `profile ${this.profile.name} not applied (nothing of it was kept): ${failed.map((x) => `${x.fault} on ${x.link}: ${x.error}`).join('; ')}`,
        /max_active_faults/.test(first.error) ? 409 : 400,
      );
    }
    for (const st of this.states) {
      if (st.step.at !== 0) continue;
      const byFault = new Map<string, string[]>();
      for (const p of st.placed) byFault.set(p.fault, [...(byFault.get(p.fault) ?? []), p.link]);
      for (const [fault, links] of byFault) report.targets.push({ fault, links });
    }
    for (const s of report.scheduled) report.targets.push({ fault: s.fault, links: s.links });
    for (const st of this.states) if (st.step.at !== 0) this.later(st, st.step.at, () => this.run(st));
    this.log.info({ targets: report.targets.length, skipped: report.skipped }, 'profile applied');
    return report;
  }

  private later(st: StepState, ms: number, fn: () => void): void {
    st.nextAt = Date.now() + ms;
    const t = setTimeout(() => {
      st.timers.delete(t);
      fn();
    }, ms);
    st.timers.add(t);
  }

  private run(st: StepState): Failure[] {
    if (this.stopped) return [];
    st.runs++;
    const failed = this.activate(st);
    const { duration, every, repeat } = st.step;
    if (duration !== undefined) this.later(st, duration, () => this.deactivate(st));
    if (every !== undefined && (repeat === undefined || st.runs < repeat)) this.later(st, every, () => this.run(st));
    else if (duration === undefined) st.nextAt = null;
    return failed;
  }

  private activate(st: StepState): Failure[] {
    st.active = true;
    const failed: Failure[] = [];
    for (const f of st.step.faults) {
      const t = this.targets(f);
      if (typeof t === 'string') continue;
      for (const linkName of t) {
        const link = this.host.links.get(linkName);
        if (!link) continue;
        try {
          // A fault of the same name left by an API call is replaced: the profile is the intent now.
          if (link.faults.has(f.input.name!)) link.removeFault(f.input.name!);
          link.addFault({ ...f.input });
          st.placed.push({ link: linkName, fault: f.input.name! });
        } catch (err) {
          const failure = { fault: f.input.name!, link: linkName, error: (err as Error).message, at: new Date().toISOString() };
          failed.push(failure);
          st.failures.push(failure);
          if (st.failures.length > MAX_FAILURES) st.failures.shift();
          this.log.error({ link: linkName, fault: f.input.name, err: failure.error }, 'profile fault not applied');
        }
      }
    }
    this.log.info({ step: this.states.indexOf(st), run: st.runs, failed: failed.length }, 'step started');
    return failed;
  }

  private deactivate(st: StepState): void {
    st.active = false;
    for (const p of st.placed) {
      const link = this.host.links.get(p.link);
      if (link?.faults.has(p.fault)) link.removeFault(p.fault);
    }
    st.placed = [];
    if (st.timers.size === 0) st.nextAt = null;
    this.log.info({ step: this.states.indexOf(st), run: st.runs }, 'step ended');
  }

  stop(): void {
    this.stopped = true;
    for (const st of this.states) {
      for (const t of st.timers) clearTimeout(t);
      st.timers.clear();
      this.deactivate(st);
    }
  }

  status() {
    return {
      name: this.profile.name,
      file: this.profile.file,
      started_at: new Date(this.startedAt).toISOString(),
      steps: this.states.map((st, i) => ({
        index: i,
        active: st.active,
        runs: st.runs,
        next_change_in_ms: st.nextAt !== null && st.timers.size ? Math.max(0, st.nextAt - Date.now()) : null,
        failures: st.failures,
      })),
    };
  }
}

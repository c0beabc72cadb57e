/**
 * Runs a profile's schedule on this sidecar: each step starts after its
 * offset, lasts its duration, and repeats at its interval. Entries for other
 * nodes, or whose link selector matches no link here, are skipped and
 * reported. Clearing the profile cancels timers and removes its faults.
 */
import type { Link } from '../links/link.js';
import type { Logger } from '../logger.js';
import type { Profile, ProfileFault, ProfileStep } from './profile.js';

export interface ProfileHost {
  readonly links: Map<string, Link>;
  readonly log: Logger;
  readonly opts: { node: string };
}

export interface ApplyReport {
  profile: string;
  targets: Array<{ fault: string; links: string[] }>;
  skipped: Array<{ fault: string; reason: string }>;
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
}

export class ProfileRunner {
  private readonly states: StepState[];
  private readonly log: Logger;
  private startedAt = 0;
  private stopped = false;

  constructor(readonly profile: Profile, private readonly host: ProfileHost) {
    this.log = host.log.child({ component: 'profile', profile: profile.name });
    this.states = profile.steps.map((step) => ({ step, runs: 0, active: false, nextAt: null, timers: new Set(), placed: [] }));
  }

  private targets(f: ProfileFault): string[] | string {
    if (f.nodes && !f.nodes.includes(this.host.opts.node)) return `for nodes ${f.nodes.join(', ')}, this is ${this.host.opts.node}`;
    const res = f.links.map(globToRegExp);
    const names = [...this.host.links.keys()].filter((n) => res.some((r) => r.test(n)));
    return names.length ? names : `no link matches ${f.links.join(', ')}`;
  }

  start(): ApplyReport {
    this.startedAt = Date.now();
    const report: ApplyReport = { profile: this.profile.name, targets: [], skipped: [] };
    for (const st of this.states) {
      for (const f of st.step.faults) {
        const t = this.targets(f);
        if (typeof t === 'string') report.skipped.push({ fault: f.input.name!, reason: t });
        else report.targets.push({ fault: f.input.name!, links: t });
      }
    }
    // Steps due at once start before the API answers, so the reply reflects the new state.
    for (const st of this.states) {
      if (st.step.at === 0) this.run(st);
      else this.later(st, st.step.at, () => this.run(st));
    }
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

  private run(st: StepState): void {
    if (this.stopped) return;
    st.runs++;
    this.activate(st);
    const { duration, every, repeat } = st.step;
    if (duration !== undefined) this.later(st, duration, () => this.deactivate(st));
    if (every !== undefined && (repeat === undefined || st.runs < repeat)) this.later(st, every, () => this.run(st));
    else if (duration === undefined) st.nextAt = null;
  }

  private activate(st: StepState): void {
    st.active = true;
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
          this.log.error({ link: linkName, fault: f.input.name, err: (err as Error).message }, 'profile fault not applied');
        }
      }
    }
    this.log.info({ step: this.states.indexOf(st), run: st.runs }, 'step started');
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
      })),
    };
  }
}

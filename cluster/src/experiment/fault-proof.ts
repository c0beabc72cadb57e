/**
 * Proof that the fault bit. A profile applied is not a fault injected: an entry may match no link, name a fault the
 * link's protocol cannot carry, hit the sidecar's fault budget, or be scheduled after the heal. While the fault is
 * on, the runner polls each sidecar's GET /faults; before judging, every fault meant for a sidecar must have been
 * seen installed there and its (link, type) fired counter must have grown. Otherwise the verdict is INCONCLUSIVE:
 * nothing was tested, so nothing passed.
 */
import { faultsSnapshot, type FaultsSnapshot } from '../chaos/sidecar-client.js';
import type { NodeApply } from '../chaos/apply.js';

export interface FaultProof {
  node: string;
  fault: string;
  type: string | null;
  links: string[];
  installed: boolean;
  fired: number;
  /** Why it does not count as having bitten (null: it did). */
  problem: string | null;
}

const firedOn = (snap: FaultsSnapshot | undefined, link: string, type: string) => snap?.firedTotals.find((f) => f.link === link && f.type === type)?.fired ?? 0;

export class FaultWatch {
  private readonly before = new Map<string, FaultsSnapshot>();
  private readonly last = new Map<string, FaultsSnapshot>();
  /** node → fault name → {type, links} as seen installed. */
  private readonly seen = new Map<string, Map<string, { type: string; links: Set<string> }>>();
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  readonly errors: string[] = [];

  constructor(private readonly sidecars: Array<{ node: string; url: string }>) {}

  /** Fired counters before the fault. */
  async baseline(): Promise<void> {
    await Promise.all(this.sidecars.map(async (s) => this.before.set(s.node, await faultsSnapshot(s.url))));
  }

  private async poll(): Promise<void> {
    await Promise.all(this.sidecars.map(async (s) => {
      try {
        const snap = await faultsSnapshot(s.url);
        this.last.set(s.node, snap);
        const mine = this.seen.get(s.node) ?? new Map<string, { type: string; links: Set<string> }>();
        for (const f of snap.faults) {
          const entry = mine.get(f.name) ?? { type: f.type, links: new Set<string>() };
          entry.links.add(f.link);
          mine.set(f.name, entry);
        }
        this.seen.set(s.node, mine);
      } catch (err) {
        if (this.errors.length < 10) this.errors.push(`sidecar-${s.node}: ${(err as Error).message}`);
      }
    }));
  }

  /** Polls every second while the fault is on (scheduled steps install later than the apply). */
  start(): void {
    const tick = () => {
      this.polling ??= this.poll().finally(() => {
        this.polling = null;
      });
    };
    tick();
    this.timer = setInterval(tick, 1000);
  }

  /** A last poll (right before the heal) and stop. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
    await this.poll();
  }

  /**
   * For each fault the apply meant for a sidecar: was it installed, and did it fire? A fault whose links exist on
   * some sidecars only (peer links of a one-node cluster) must bite where it installed; one that installed nowhere
   * is a problem on every sidecar.
   */
  prove(applied: NodeApply[]): FaultProof[] {
    const out: FaultProof[] = [];
    const benign = (reason: string) => /^for nodes |^no link matches /.test(reason);
    for (const { node, report } of applied) {
      const meant = new Set([...report.targets.map((t) => t.fault), ...report.skipped.filter((s) => !/^for nodes /.test(s.reason)).map((s) => s.fault)]);
      for (const fault of meant) {
        const seen = this.seen.get(node)?.get(fault);
        const skipped = report.skipped.find((s) => s.fault === fault && !/^for nodes /.test(s.reason));
        const links = seen ? [...seen.links] : report.targets.find((t) => t.fault === fault)?.links ?? [];
        const type = seen?.type ?? null;
        const fired = type ? links.reduce((n, l) => n + firedOn(this.last.get(node), l, type) - firedOn(this.before.get(node), l, type), 0) : 0;
        const installedSomewhere = [...this.seen.values()].some((m) => m.has(fault));
        let problem: string | null = null;
        if (seen && fired <= 0) problem = `installed on ${links.join(',')} but never fired`;
        else if (!seen && !installedSomewhere) problem = skipped ? `installed on no sidecar (here: ${skipped.reason})` : 'never seen installed on any link while the fault was on';
        else if (!seen && !(skipped && benign(skipped.reason))) problem = skipped ? `not installed: ${skipped.reason}` : 'never seen installed here while the fault was on';
        out.push({ node, fault, type, links, installed: !!seen, fired, problem });
      }
    }
    return out;
  }
}

/**
 * Experiments started from the console: the same runner and report writer as `chaos run` (cli/chaos.ts), one run at
 * a time (two would fault each other's cluster), with its progress lines kept for the page's timeline, and the past
 * reports in .reports/ listed and served by name.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Shape } from '../chaos/shapes.js';
import { runExperiment } from '../experiment/experiment.js';
import type { ClusterLayout } from '../layout.js';
import { writeReport } from '../report/html.js';
import { formatTable, summaryRows, verdictLines } from '../report/summary.js';
import { BadRequest } from './validate.js';

export interface ExperimentRequest {
  profile: string;
  shape?: Shape;
  groups?: string[][];
  nodes?: string[];
  holdMs?: number;
  rate?: number;
}

export interface ExperimentStatus {
  running: boolean;
  request: ExperimentRequest | null;
  startedAt: string | null;
  endedAt: string | null;
  /** Progress lines as the runner says them, with ms since the start: the page's timeline. */
  lines: Array<{ t: number; line: string }>;
  verdict: string | null;
  exitCode: number | null;
  report: string | null;
  error: string | null;
}

const MAX_LINES = 400;
const REPORT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.html$/;

export class ExperimentControl {
  private state: ExperimentStatus = { running: false, request: null, startedAt: null, endedAt: null, lines: [], verdict: null, exitCode: null, report: null, error: null };
  private abort: AbortController | null = null;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly layout: ClusterLayout, private readonly reportsDir: string, private readonly log: Logger, private readonly onChange: () => void) {}

  status(): ExperimentStatus {
    return this.state;
  }

  /** Starts a run in the background; a second one while it runs is a 409. */
  start(req: ExperimentRequest): ExperimentStatus {
    if (this.state.running) throw new BadRequest(`an experiment is already running (${this.state.request?.profile}); wait for it or stop it`, 409);
    const started = Date.now();
    this.state = { running: true, request: req, startedAt: new Date(started).toISOString(), endedAt: null, lines: [], verdict: null, exitCode: null, report: null, error: null };
    const say = (line: string) => {
      const lines = this.state.lines;
      lines.push({ t: Date.now() - started, line: line.slice(0, 500) });
      if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
      this.onChange();
    };
    this.abort = new AbortController();
    this.log.info({ request: req }, 'experiment started from the console');
    this.done = this.run(req, say, this.abort.signal);
    return this.state;
  }

  private async run(req: ExperimentRequest, say: (line: string) => void, signal: AbortSignal): Promise<void> {
    try {
      const result = await runExperiment({
        signal,
        layout: this.layout,
        profile: req.shape ? 'partition' : req.profile,
        shape: req.shape,
        shapeOptions: { groups: req.groups },
        nodes: req.nodes,
        holdMs: req.holdMs,
        rate: req.rate ?? 200,
        say,
      });
      for (const line of formatTable(summaryRows([result]))) say(line);
      for (const line of verdictLines(result)) say(line);
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
      const files = writeReport(join(this.reportsDir, `chaos-${result.profile}-${stamp}.html`), [result], `Chaos experiment: ${result.profile}`);
      say(`report: ${files.html}`);
      Object.assign(this.state, { verdict: result.verdict, exitCode: result.exitCode, report: files.html.split('/').pop()! });
    } catch (err) {
      this.log.error({ err }, 'experiment failed');
      this.state.error = (err as Error).message;
      say(`error: ${(err as Error).message}`);
    } finally {
      Object.assign(this.state, { running: false, endedAt: new Date().toISOString() });
      this.abort = null;
      this.onChange();
    }
  }

  /** Aborts the running experiment (the runner resets every sidecar and still writes its report). */
  stop(): boolean {
    if (!this.abort) return false;
    this.abort.abort();
    return true;
  }

  async close(): Promise<void> {
    this.stop();
    await this.done;
  }

  /** The HTML reports in .reports/, newest first (at most 200). */
  reports(): Array<{ name: string; bytes: number; modified: string }> {
    if (!existsSync(this.reportsDir)) return [];
    return readdirSync(this.reportsDir)
      .filter((f) => REPORT_NAME.test(f))
      .map((f) => ({ f, s: statSync(join(this.reportsDir, f)) }))
      .filter((x) => x.s.isFile())
      .sort((a, b) => b.s.mtimeMs - a.s.mtimeMs)
      .slice(0, 200)
      .map((x) => ({ name: x.f, bytes: x.s.size, modified: x.s.mtime.toISOString() }));
  }

  /** One report by name: only names the listing could show (no paths, no dot-dot). */
  report(name: string): string {
    if (!REPORT_NAME.test(name) || name.includes('..')) throw new BadRequest('report name must be a file name ending in .html, as listed by GET /api/reports');
    const file = join(this.reportsDir, name);
    if (!existsSync(file)) throw new BadRequest(`no report ${name}`, 404);
    return readFileSync(file, 'utf8');
  }
}

/** `make demo`: start the cluster (unless one is up), run each profile as an experiment, table + report, stop what it started. */
import { down, up } from './cluster.js';
import { runExperiment, type ExperimentResult } from './experiment/experiment.js';
import { writeReport } from './report/html.js';
import { formatTable, summaryRows } from './report/summary.js';
import { readState, supervisorPid } from './state.js';

export interface DemoOptions {
  dir: string;
  root: string;
  nodes: number;
  profiles: string[];
  holdMs?: number;
  rate?: number;
  report: string;
  say: (line: string) => void;
  signal?: AbortSignal;
}

export interface DemoOutcome {
  ran: number;
  failed: string[];
  /** The worst verdict's exit code (ABORTED > INCONCLUSIVE > FAIL > PASS). */
  exitCode: number;
}

export async function runDemo(o: DemoOptions): Promise<DemoOutcome> {
  const say = o.say;
  const started = supervisorPid(o.dir) === null;
  if (started) {
    say(`== starting a ${o.nodes}-relay cluster in ${o.dir}`);
    await up({ dir: o.dir, root: o.root, nodes: o.nodes, say: (l) => say(`   ${l}`) });
  } else {
    say(`== using the cluster already running in ${o.dir} (it stays up)`);
  }
  const results: ExperimentResult[] = [];
  try {
    const { layout } = readState(o.dir);
    for (const profile of o.profiles) {
      if (o.signal?.aborted) break;
      say('');
      say(`== experiment ${profile}`);
      const result = await runExperiment({ layout, profile, holdMs: o.holdMs, rate: o.rate, signal: o.signal, say: (l) => say(`   ${l}`) });
      results.push(result);
      say(`   verdict: ${result.verdict}${result.passed ? '' : ` — ${[...result.violations, ...result.inconclusive].join('; ')}`}`);
    }
  } finally {
    if (started) {
      say('');
      say('== stopping the cluster the demo started');
      await down({ dir: o.dir, say: (l) => say(`   ${l}`) });
    }
  }
  say('');
  for (const line of formatTable(summaryRows(results))) say(line);
  const files = writeReport(o.report, results, 'Chaos demo: every profile as an experiment');
  say('');
  say(`report: ${files.html} (open it in a browser; journals ${files.journals.map((j) => j.replace(/.*\//, '')).join(', ')}; raw data ${files.json})`);
  const failed = results.filter((r) => !r.passed).map((r) => `${r.profile} ${r.verdict}`);
  say(failed.length === 0 ? `demo: all ${results.length} experiments PASSED` : `demo: ${failed.length} of ${results.length} experiments did not pass: ${failed.join(', ')} (violations above and in the report)`);
  const exitCode = Math.max(0, ...results.map((r) => r.exitCode));
  return { ran: results.length, failed, exitCode };
}

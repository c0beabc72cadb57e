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
  report: string;
  say: (line: string) => void;
}

export interface DemoOutcome {
  ran: number;
  failed: string[];
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
      say('');
      say(`== experiment ${profile}`);
      const result = await runExperiment({ layout, profile, holdMs: o.holdMs, say: (l) => say(`   ${l}`) });
      results.push(result);
      say(`   verdict: ${result.passed ? 'PASS' : 'FAIL'}${result.passed ? '' : ` — ${result.violations.join('; ')}`}`);
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
  say(`report: ${files.html} (open it in a browser; data in ${files.json})`);
  const failed = results.filter((r) => !r.passed).map((r) => r.profile);
  say(failed.length === 0 ? `demo: all ${results.length} experiments PASSED` : `demo: ${failed.length} of ${results.length} experiments FAILED their verdict: ${failed.join(', ')} (violations above and in the report)`);
  return { ran: results.length, failed };
}

#!/usr/bin/env node
/**
 * `chaos`: faults on the running local cluster through the sidecar APIs (what the `make chaos-*` targets run), and
 * experiments with verdicts (`chaos run PROFILE`, `chaos demo`). Exit codes: 0 ok / PASS, 1 a verdict FAILED,
 * 2 the command itself failed (no cluster, bad arguments, an API refused), 3 INCONCLUSIVE (the fault was not proven
 * to have bitten), 4 ABORTED (steady state not met, an abort bound crossed, interrupted; every sidecar was reset).
 */
import { join } from 'node:path';
import yargs from 'yargs';
import { parseDurationMs } from '../../../sidecar/dist/units.js';
import { hideBin } from 'yargs/helpers';
import { applyToCluster, crashRelay, describeApply, loadProfileSource, resetCluster, watchHints } from '../chaos/apply.js';
import { listFaults } from '../chaos/sidecar-client.js';
import { parseGroups, partitionProfileYaml, planPartition, SHAPES, type Shape } from '../chaos/shapes.js';
import { runDemo } from '../demo.js';
import { runExperiment } from '../experiment/experiment.js';
import { directEndpoints } from '../layout.js';
import { writeReport } from '../report/html.js';
import { formatTable, summaryRows, verdictLines } from '../report/summary.js';
import { readState } from '../state.js';
import { DEFAULT_CLUSTER_DIR, REPO_ROOT, runCommand, say } from './common.js';

/** Durations on the command line use the profiles' grammar (sidecar/src/units.ts): 500ms, 15s, 2m; a bare number is ms. */
function parseDuration(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  return parseDurationMs(text);
}

const nodeList = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
const reportsDir = join(REPO_ROOT, '.reports');
const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);

function printHeal(dir: string, selfHealsAfterMs?: number): void {
  say('heal:');
  if (selfHealsAfterMs !== undefined) say(`  heals by itself after ${(selfHealsAfterMs / 1000).toFixed(0)} s (the profile's schedule), or now with:`);
  say(`  make chaos-reset        # = node cluster/dist/cli/chaos.js --dir ${dir} reset (POST /reset on every sidecar)`);
}

await yargs(hideBin(process.argv))
  .scriptName('chaos')
  .usage('$0 <command> [options]\n\nChaos on the local cluster (`make up`) through its sidecars, and experiments with verdicts.')
  .option('dir', { type: 'string', default: DEFAULT_CLUSTER_DIR, describe: 'Cluster folder [env CLUSTER_DIR]', global: true })
  .command('apply <profile>', 'Apply a profile from chaos-profiles/ (name or file) to the sidecars', (y) => y
    .positional('profile', { type: 'string', demandOption: true, describe: 'partition, db-outage, redis-outage, latency, flaky, byzantine, bandwidth, or a YAML file' })
    .option('nodes', { type: 'string', describe: 'Only these sidecars, e.g. a or a,b (default: all; the profile\'s nodes: selectors still apply)' }),
  (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    const source = loadProfileSource(layout.root, a.profile);
    const applied = await applyToCluster(layout, source.yaml, nodeList(a.nodes));
    say(`applied ${source.name}: ${source.description}`);
    for (const line of describeApply(applied)) say(line);
    say('watch:');
    for (const line of watchHints(source.name, layout, nodeList(a.nodes)?.[0])) say(`  ${line}`);
    printHeal(a.dir, source.naturalDurationMs);
  }, 2))
  .command('partition', 'Partition the relays: Jepsen shapes compiled into faults on each sidecar\'s peer links', (y) => y
    .option('shape', { choices: SHAPES, describe: 'isolate (one node), halves, bridge, majorities-ring, groups (with --groups); none: chaos-profiles/partition.yaml' })
    .option('groups', { type: 'string', describe: 'For --shape groups: e.g. a,b/c' })
    .option('node', { type: 'string', describe: 'For --shape isolate: the node cut off (default a)' })
    .option('one-way', { type: 'boolean', default: false, describe: 'Only the first group loses its outbound peer links' })
    .option('existing', { choices: ['freeze', 'reset'] as const, default: 'freeze' as const, describe: 'Open peer connections: held until heal, or reset' })
    .option('duration', { type: 'string', describe: 'Heal by itself after this long (e.g. 30s); default until `chaos reset`' }),
  (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    const names = layout.nodes.map((n) => n.name);
    if (!a.shape) {
      const source = loadProfileSource(layout.root, 'partition');
      const applied = await applyToCluster(layout, source.yaml);
      say(`applied ${source.name}: ${source.description}`);
      for (const line of describeApply(applied)) say(line);
      say('watch:');
      for (const line of watchHints('partition', layout)) say(`  ${line}`);
      printHeal(a.dir, source.naturalDurationMs);
      return;
    }
    const plan = planPartition(a.shape as Shape, names, { node: a.node, groups: a.groups ? parseGroups(a.groups) : undefined, oneWay: a.oneWay, existing: a.existing });
    const duration = parseDuration(a.duration);
    const applied = await applyToCluster(layout, partitionProfileYaml(plan, duration));
    say(`partition (${plan.shape}) ${plan.description}`);
    say(`  components: ${plan.groups.map((g) => `{${g.join(',')}}`).join(' ')}`);
    say(`  blocked: ${plan.blocked.map(([f, t]) => `${f}->${t}`).join(' ')}`);
    for (const line of describeApply(applied)) say(line);
    say('watch:');
    for (const line of watchHints('partition', layout, plan.groups[0]![0])) say(`  ${line}`);
    printHeal(a.dir, duration);
  }, 2))
  .command('reset', 'Heal everything: clear the profile and every fault on every sidecar', () => undefined, (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    const done = await resetCluster(layout);
    say(`healed: ${done.join(', ')} reset (profiles cleared, faults removed, links enabled)`);
    say('watch recovery: make status');
  }, 2))
  .command('crash [node]', 'SIGKILL a relay (default a); the supervisor restarts it like Restart=always', (y) => y
    .positional('node', { type: 'string', default: 'a', describe: 'a, b, ...' }),
  (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    const killed = crashRelay(layout, a.node);
    say(`SIGKILL ${killed.name} (pid ${killed.pid}); the supervisor restarts it after 1 s`);
    say('watch:');
    for (const line of watchHints('crash', layout, a.node)) say(`  ${line}`);
    say('heal: nothing to do (runbook target: serving again < 30 s); `make status` shows the restart count');
  }, 2))
  .command('faults', 'List the faults active on every sidecar', () => undefined, (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    for (const n of layout.nodes) {
      const faults = await listFaults(directEndpoints(layout, n).sidecarUrl);
      say(`sidecar-${n.name}: ${faults.length ? faults.map((f) => `${f.name} (${f.type}, ${f.stream}) on ${f.link}`).join('; ') : 'no faults'}`);
    }
  }, 2))
  .command('run <profile>', 'Run an experiment: workload, fault, heal, verdict (exit 0 PASS, 1 FAIL, 3 INCONCLUSIVE, 4 ABORTED)', (y) => y
    .positional('profile', { type: 'string', demandOption: true, describe: 'A chaos-profiles/ name or file, crash, or partition (with --shape)' })
    .option('shape', { choices: SHAPES, describe: 'With partition: the Jepsen shape' })
    .option('groups', { type: 'string', describe: 'With --shape groups: e.g. a,b/c' })
    .option('existing', { choices: ['freeze', 'reset'] as const, default: 'freeze' as const, describe: 'With --shape: open peer connections held until heal, or reset' })
    .option('nodes', { type: 'string', describe: 'Sidecars to fault (default all); for crash the relay to kill' })
    .option('hold', { type: 'string', describe: 'How long the fault lasts before the heal (default per profile, e.g. 12s)' })
    .option('rate', { type: 'number', default: 200, describe: 'Events per second published across the cluster' })
    .option('event-bytes', { type: 'number', default: 700, describe: 'Size of each regular note, bytes' })
    .option('report', { type: 'string', describe: 'Report file (.html; a .json is written beside it); default .reports/chaos-PROFILE-TIME.html' }),
  (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    say(`experiment ${a.profile}${a.shape ? ` (${a.shape})` : ''} on ${layout.nodes.map((n) => `relay-${n.name}`).join(', ')}`);
    // Ctrl-C aborts the experiment (sidecars reset, report written, exit 4) instead of leaving faults behind.
    const interrupt = new AbortController();
    process.once('SIGINT', () => interrupt.abort());
    process.once('SIGTERM', () => interrupt.abort());
    const result = await runExperiment({
      signal: interrupt.signal,
      eventBytes: a.eventBytes,
      layout,
      profile: a.shape ? 'partition' : a.profile,
      shape: a.shape as Shape | undefined,
      shapeOptions: { groups: a.groups ? parseGroups(a.groups) : undefined, existing: a.existing },
      nodes: nodeList(a.nodes),
      holdMs: parseDuration(a.hold),
      rate: a.rate,
      say,
    });
    say('');
    for (const line of formatTable(summaryRows([result]))) say(line);
    for (const line of verdictLines(result)) say(line);
    const files = writeReport(a.report ?? join(reportsDir, `chaos-${result.profile}-${stamp()}.html`), [result], `Chaos experiment: ${result.profile}`);
    say(`report: ${files.html} (journal: ${files.journals[0]}; raw data: ${files.json})`);
    return result.exitCode;
  }, 2))
  .command('demo', 'The main job: start the cluster (unless up), run every profile as an experiment, print the table, write the report, stop what it started', (y) => y
    .option('profiles', { type: 'string', default: 'partition,db-outage,redis-outage,latency,flaky,bandwidth,byzantine,crash', describe: 'Comma-separated experiments' })
    .option('nodes', { type: 'number', default: 2, describe: 'Relays in the cluster it starts' })
    .option('hold', { type: 'string', describe: 'Fault duration for every experiment (default per profile)' })
    .option('report', { type: 'string', default: join(reportsDir, 'demo.html'), describe: 'Report file' })
    .option('rate', { type: 'number', default: 200, describe: 'Events per second published across the cluster' })
    .option('strict', { type: 'boolean', default: false, describe: 'Exit with the worst verdict\'s code (1 FAIL, 3 INCONCLUSIVE, 4 ABORTED); default 0 once every experiment ran and the report is written' }),
  (a) => runCommand(async () => {
    const interrupt = new AbortController();
    process.once('SIGINT', () => interrupt.abort());
    process.once('SIGTERM', () => interrupt.abort());
    const outcome = await runDemo({ dir: a.dir, root: REPO_ROOT, nodes: a.nodes, profiles: a.profiles.split(',').map((s) => s.trim()).filter(Boolean), holdMs: parseDuration(a.hold), rate: a.rate, report: a.report, say, signal: interrupt.signal });
    return a.strict ? outcome.exitCode : 0;
  }, 2))
  .demandCommand(1, 'name a command: apply, partition, reset, crash, faults, run or demo')
  // Usage errors exit 2: exit 1 is kept for a FAILED verdict, which CI gates on.
  .fail((message, err, y) => {
    if (err) throw err;
    y.showHelp();
    process.stderr.write(`\nerror: ${message}\n`);
    process.exit(2);
  })
  .strict()
  .help()
  .parseAsync();

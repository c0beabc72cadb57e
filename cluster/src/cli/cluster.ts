#!/usr/bin/env node
/** `cluster up|down|status|logs|journal|env`: the local cluster (what `make up`, `make down`, `make status`, `make logs` run). */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { down, health, up } from '../cluster.js';
import { paths } from '../layout.js';
import { filesForUnit, follow, logFiles, tail, type Component } from '../logs.js';
import { readState } from '../state.js';
import { DEFAULT_CLUSTER_DIR, REPO_ROOT, runCommand, say, table } from './common.js';

const COMPONENTS: Component[] = ['relay', 'sidecar', 'supervisor', 'postgres', 'redis'];

await yargs(hideBin(process.argv))
  .scriptName('cluster')
  .usage('$0 <command> [options]\n\nThe local cluster: private PostgreSQL and Redis, relays each behind its own chaos sidecar, a supervisor.')
  .option('dir', { type: 'string', default: DEFAULT_CLUSTER_DIR, describe: 'Cluster folder (data, logs, configs) [env CLUSTER_DIR]', global: true })
  .command('up', 'Start the cluster and wait until every relay and sidecar is healthy', (y) => y
    .option('nodes', { type: 'number', default: 2, describe: 'Relays (2-5), named a, b, c, ...' })
    .option('free-ports', { type: 'boolean', default: false, describe: 'Use free ephemeral ports instead of 7001+/8080+/8474+' })
    .option('heartbeat-timeout', { type: 'number', default: 5, describe: 'Peer heartbeat timeout, seconds (runbook default 30)' }),
  (a) => runCommand(async () => {
    const state = await up({ dir: a.dir, root: REPO_ROOT, nodes: a.nodes, freePorts: a.freePorts, heartbeatTimeoutSeconds: a.heartbeatTimeout, say });
    const p = paths(state.layout);
    say('');
    say(`cluster up: ${state.layout.nodes.length} relays; logs in ${p.logs}`);
    say(`  make status                 # health of every node`);
    say(`  make logs NODE=a            # relay-a's log (JSON lines; pipe to grep)`);
    say(`  source ${p.envFile}   # psql, redis-cli, journalctl as in the runbook`);
    say(`  make chaos-partition        # then make chaos-reset`);
    say(`  make down                   # stop everything and remove ${state.layout.dir}`);
  }))
  .command('down', 'Stop relays, sidecars, the supervisor, PostgreSQL and Redis; remove the cluster folder', (y) => y
    .option('keep', { type: 'boolean', default: false, describe: 'Keep the folder (data and logs) for a post-mortem' }),
  (a) => runCommand(() => down({ dir: a.dir, keep: a.keep, say })))
  .command('status', 'Health of every node: processes, mode, cache, peers, active faults', (y) => y
    .option('json', { type: 'boolean', default: false, describe: 'Print JSON' }),
  (a) => runCommand(async () => {
    const state = readState(a.dir);
    const h = await health(state.layout);
    if (a.json) {
      say(JSON.stringify(h, null, 2));
    } else {
      say(`supervisor: ${h.supervisorPid ? `pid ${h.supervisorPid}` : 'NOT RUNNING'}   postgres :${state.layout.postgres.port} ${h.postgres ? 'up' : 'DOWN'}   redis :${state.layout.redis.port} ${h.redis ? 'up' : 'DOWN'}`);
      const rows = [['node', 'pid', 'restarts', 'admin', 'health', 'mode', 'cache', 'peers up', 'partitioned', 'sidecar', 'profile', 'faults']];
      for (const n of h.nodes) {
        const node = state.layout.nodes.find((x) => x.name === n.node)!;
        rows.push([
          `relay-${n.node}`, String(n.relayPid ?? '-'), String(n.relayRestarts), `:${node.adminPort}`, n.health === null ? 'DOWN' : String(n.health),
          n.mode ?? '-', n.cache ?? '-', n.peersUp === null ? '-' : `${n.peersUp}/${state.layout.nodes.length - 1}`,
          n.partitioned === null ? '-' : String(n.partitioned), `:${node.sidecarApiPort}${n.sidecarPid ? '' : ' DOWN'}`, n.profile ?? '-', n.faults === null ? '-' : String(n.faults),
        ]);
      }
      for (const line of table(rows)) say(line);
    }
    const healthy = h.supervisorPid !== null && h.postgres && h.redis && h.nodes.every((n) => n.health === 200);
    return healthy ? 0 : 3;
  }))
  .command('logs [node]', 'Print a node\'s log (relay by default); node may also be supervisor, postgres or redis', (y) => y
    .positional('node', { type: 'string', describe: 'a, b, ... (default: every relay, merged by time)' })
    .option('component', { alias: 'c', choices: COMPONENTS, default: 'relay' as Component, describe: 'Which process of the node' })
    .option('lines', { alias: 'n', type: 'number', default: 0, describe: 'Only the last N lines (0 = all)' })
    .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep printing new lines' }),
  (a) => runCommand(async () => {
    const state = readState(a.dir);
    let component = a.component;
    let node = a.node || undefined;
    if (node && (COMPONENTS as string[]).includes(node)) {
      component = node as Component;
      node = undefined;
    }
    const files = logFiles(state.layout, component, component === 'relay' || component === 'sidecar' ? node : undefined);
    for (const line of tail(files, a.lines)) say(line);
    if (a.follow) {
      follow(files, say);
      await new Promise<never>(() => undefined);
    }
  }))
  .command('journal', 'journalctl look-alike over the log files (used by the shim in .cluster/bin)', (y) => y
    .option('unit', { alias: 'u', type: 'string', describe: 'nostream-node[@NODE], chaos-sidecar[@NODE], postgresql, redis-server' })
    .option('lines', { alias: 'n', type: 'number', default: 0, describe: 'Last N lines' })
    .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Follow' })
    .option('no-pager', { type: 'boolean', describe: 'Accepted for compatibility' })
    .option('output', { alias: 'o', type: 'string', describe: 'Accepted for compatibility (lines are printed as logged)' })
    .option('since', { type: 'string', describe: 'Accepted for compatibility (not applied)' }),
  (a) => runCommand(async () => {
    const state = readState(a.dir);
    const files = filesForUnit(state.layout, a.unit);
    for (const line of tail(files, a.lines)) say(line);
    if (a.follow) {
      follow(files, say);
      await new Promise<never>(() => undefined);
    }
  }))
  .command('env', 'Print the shell lines that point psql, redis-cli and journalctl at this cluster', () => undefined,
    (a) => runCommand(async () => {
      const state = readState(a.dir);
      say(`source ${paths(state.layout).envFile}`);
    }))
  .demandCommand(1, 'name a command: up, down, status, logs, journal or env')
  .strict()
  .help()
  .parseAsync();

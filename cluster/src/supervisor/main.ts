#!/usr/bin/env node
/** The cluster supervisor process: `node cluster/dist/supervisor/main.js --dir .cluster` (started by `make up`). */
import { writeFileSync, rmSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { pino } from 'pino';
import { paths } from '../layout.js';
import { readState } from '../state.js';
import { Supervisor } from './supervisor.js';

const argv = yargs(hideBin(process.argv))
  .scriptName('cluster-supervisor')
  .option('dir', { type: 'string', demandOption: true, describe: 'Cluster folder holding cluster.json' })
  .strict()
  .help()
  .parseSync();

const log = pino({ base: { service: 'cluster-supervisor' }, timestamp: pino.stdTimeFunctions.isoTime });
const state = readState(argv.dir);
const p = paths(state.layout);
const supervisor = new Supervisor(state.processes, p.supervisorState, log);
writeFileSync(p.supervisorPid, String(process.pid));
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'supervisor stopping');
  supervisor.stop().then(
    () => {
      rmSync(p.supervisorPid, { force: true });
      log.info('supervisor stopped');
      process.exit(0);
    },
    (err: unknown) => {
      log.error({ err }, 'supervisor stop failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => shutdown('SIGHUP'));
log.info({ dir: state.layout.dir, processes: state.processes.map((s) => s.name) }, 'supervisor started');
supervisor.start();

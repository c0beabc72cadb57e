#!/usr/bin/env node
/**
 * `console`: the SRE console of the running local cluster (what `make console` runs). Prints the URL to open; the
 * token travels in the URL fragment, which the browser never sends to any server, and the page sends it as a header.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConsoleServer } from '../console/server.js';
import { readState } from '../state.js';
import { DEFAULT_CLUSTER_DIR, runCommand, say } from './common.js';

await yargs(hideBin(process.argv))
  .scriptName('console')
  .usage('$0 [options]\n\nThe SRE console: a page showing and steering the local cluster (`make up` first).')
  .option('dir', { type: 'string', default: DEFAULT_CLUSTER_DIR, describe: 'Cluster folder [env CLUSTER_DIR]' })
  .option('host', { type: 'string', default: '127.0.0.1', describe: 'Bind address (loopback: the console steers faults)' })
  .option('port', { type: 'number', default: Number(process.env.CONSOLE_PORT ?? 7700), describe: 'Port [env CONSOLE_PORT]' })
  .option('allowed-hosts', { type: 'string', default: '', describe: 'Extra Host names besides loopback ones, comma-separated' })
  .option('log-level', { type: 'string', default: 'info' })
  .command('$0', 'Serve the console until Ctrl-C', () => undefined, (a) => runCommand(async () => {
    const { layout } = readState(a.dir);
    if (!/^(127\.|localhost$|::1$)/.test(a.host) && !process.env.CONSOLE_TOKEN) {
      throw new Error(`--host ${a.host} is not loopback: set CONSOLE_TOKEN yourself to expose the console`);
    }
    // A fresh token per start unless given: whoever can read the cluster folder (or this terminal) can use it.
    const token = process.env.CONSOLE_TOKEN || randomBytes(24).toString('hex');
    const tokenFile = join(layout.dir, 'console.token');
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    const logger = pino({ base: { service: 'cluster-console' }, level: a.logLevel, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
    const server = new ConsoleServer({ layout, host: a.host, port: a.port, token, allowedHosts: a.allowedHosts.split(',').map((s) => s.trim()).filter(Boolean), logger });
    const port = await server.listen();
    const host = a.host.includes(':') ? `[${a.host}]` : a.host;
    say(`console: http://${host}:${port}/#token=${token}`);
    say(`  open that URL (the token is in the fragment: never sent to a server, removed from the address bar)`);
    say(`  curl: curl -H "Authorization: Bearer $(cat ${tokenFile})" http://${host}:${port}/api/snapshot`);
    say(`  Ctrl-C stops the console (the cluster keeps running; \`make down\` stops it)`);
    await new Promise<void>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    await server.close();
  }))
  .strict()
  .help()
  .parseAsync();

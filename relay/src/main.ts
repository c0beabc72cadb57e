#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, loadConfig } from './config/load.js';
import { VerifierUnavailableError } from './crypto/create-verifier.js';
import { SETTINGS, envNameOf, flagNameOf } from './config/settings.js';
import { createLogger } from './log.js';
import { Relay } from './app.js';
import { VERSION } from './version.js';

async function start(flags: Record<string, unknown>): Promise<void> {
  let config;
  try {
    config = loadConfig({ file: (flags.config as string | undefined) ?? process.env.RELAY_CONFIG, env: process.env, flags });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`nostr-relay: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, { service: 'nostr-relay' });
  let relay: Relay;
  try {
    relay = new Relay(config, logger);
  } catch (err) {
    // Thrown out of the command handler, yargs would print the whole help before it.
    if (err instanceof VerifierUnavailableError) {
      process.stderr.write(`nostr-relay: config: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown requested');
    relay.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await relay.start();
  } catch (err) {
    logger.fatal({ err }, 'relay failed to start');
    await relay.stop().catch(() => undefined);
    process.exit(1);
  }
}

const cli = yargs(hideBin(process.argv))
  .scriptName('nostr-relay')
  .version(VERSION)
  .command(
    'start',
    'Start the relay (client WebSocket + admin API)',
    (y) => {
      y.option('config', { type: 'string', describe: 'YAML config file (env RELAY_CONFIG)' });
      for (const spec of SETTINGS) {
        y.option(flagNameOf(spec), { type: 'string', describe: `${spec.describe} [env ${envNameOf(spec)}]`, group: spec.path.startsWith('limits.') ? 'Limits:' : 'Relay:' });
      }
      return y.example('$0 start --port 7777 --admin-port 8080 --database-url postgres://postgres@127.0.0.1:5432/nostr --redis-url redis://127.0.0.1:6379/0', 'start on chosen ports');
    },
    (argv) => start(argv as Record<string, unknown>),
  )
  .demandCommand(1, 'name a command: start')
  .strict()
  .help();

await cli.parseAsync();

/** The yargs command tree. Every command has --help; errors print one clear line and set the exit code. */
import yargs from 'yargs';
import { applyCommand, clearCommand, faultAddCommand, faultLsCommand, faultRmCommand, resetCommand, statusCommand } from './remote.js';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.js';
import type { ApiTarget } from './api-client.js';

/** Bad config, profile or file: the user's input, not the sidecar, is wrong. Matched by name so that
 *  remote commands don't load the whole sidecar just to classify errors. */
const USAGE_ERRORS = new Set(['ConfigError', 'ValidationError', 'ProfileNotFound']);

const out = (line: string) => process.stdout.write(`${line}\n`);

function target(argv: { api: string; token?: string }): ApiTarget {
  return argv.token ? { api: argv.api, token: argv.token } : { api: argv.api };
}

/** Returns the exit code; undefined when the command keeps running (start). */
export async function runCli(args: string[]): Promise<number | undefined> {
  let code: number | undefined = EXIT_OK;
  const guard = (fn: () => Promise<number | undefined | void>) => async () => {
    try {
      const r = await fn();
      code = r === undefined ? EXIT_OK : r;
    } catch (err) {
      if (err instanceof CliError) code = err.code;
      else if (USAGE_ERRORS.has((err as Error).constructor.name)) code = EXIT_USAGE;
      else code = EXIT_FAILURE;
      process.stderr.write(`chaos-sidecar: ${(err as Error).message}\n`);
    }
  };

  const parser = yargs(args)
    .scriptName('chaos-sidecar')
    .usage('$0 <command> [options]\n\nA chaos proxy for a relay\'s PostgreSQL, Redis and peer links, with a Toxiproxy-compatible API.')
    .option('api', { type: 'string', default: process.env.CHAOS_SIDECAR_API ?? 'http://127.0.0.1:8474', describe: 'API URL of a running sidecar (env CHAOS_SIDECAR_API)', global: true })
    .option('token', { type: 'string', default: process.env.CHAOS_SIDECAR_TOKEN, defaultDescription: '$CHAOS_SIDECAR_TOKEN', describe: 'API token', global: true })
    .command(
      'start',
      'Start a sidecar: links from --config, API on --api-host:--api-port, optional start-up profile',
      (y) =>
        y
          .option('config', { alias: 'c', type: 'string', describe: 'sidecar YAML config (links, node, profile...)' })
          .option('profile', { alias: 'p', type: 'string', describe: 'profile to apply at start (name or path)' })
          .option('api-port', { type: 'string', describe: 'API port (default 8474; 0 = any free port)' })
          .option('api-host', { type: 'string', describe: 'API address (default 127.0.0.1; non-loopback needs --token)' })
          .option('allowed-hosts', { type: 'string', describe: 'Host/Origin names the API accepts besides loopback ones, comma-separated' })
          .option('node', { type: 'string', describe: 'this node\'s name, for profile node selectors' })
          .option('seed', { type: 'string', describe: 'random seed: same seed + same traffic = same fault decisions' })
          .option('profiles-dir', { type: 'string', describe: 'where profile names are looked up' })
          .option('dial-timeout', { type: 'string', describe: 'upstream dial timeout (e.g. 2s)' })
          .option('max-active-faults', { type: 'string', describe: 'safety valve: most faults active at once (default 100, 0 = no limit)' })
          .option('log-level', { type: 'string', describe: 'fatal|error|warn|info|debug|trace|silent' }),
      (a) =>
        guard(async () => {
          // --token is global (for remote commands) and also the API token of a started sidecar; env is read by loadConfig.
          // Loaded lazily: remote commands and --help start faster without the proxy and API code.
          const { startCommand } = await import('./start.js');
          await startCommand(a.config, {
            node: a.node, seed: a.seed, apiHost: a['api-host'], apiPort: a['api-port'], allowedHosts: a['allowed-hosts'], token: args.includes('--token') || args.some((x) => x.startsWith('--token=')) ? a.token : undefined,
            profile: a.profile, profilesDir: a['profiles-dir'], dialTimeout: a['dial-timeout'], maxActiveFaults: a['max-active-faults'], logLevel: a['log-level'],
          });
          return undefined;
        })(),
    )
    .command('status', 'Show links, faults and the active profile', (y) => y.option('json', { type: 'boolean', describe: 'raw JSON' }), (a) => guard(() => statusCommand(target(a), !!a.json, out))())
    .command('apply <profile>', 'Apply a profile: a name known to the sidecar, or a local YAML file', (y) => y.positional('profile', { type: 'string', demandOption: true }), (a) => guard(() => applyCommand(target(a), a.profile, out))())
    .command('clear', 'Stop the active profile and remove its faults', (y) => y, (a) => guard(() => clearCommand(target(a), out))())
    .command('reset', 'Enable every link and remove every fault (Toxiproxy /reset)', (y) => y, (a) => guard(() => resetCommand(target(a), out))())
    .command('fault', 'Add, remove or list faults on a running sidecar', (y) =>
      y
        .command(
          'add <link> <type>',
          'Add a fault (a Toxiproxy toxic) to a link',
          (z) =>
            z
              .positional('link', { type: 'string', demandOption: true })
              .positional('type', { type: 'string', demandOption: true, describe: 'latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, loss, blackhole, partition, corrupt, duplicate, reorder, pg_error, redis_error' })
              .option('name', { type: 'string', describe: 'fault name (default <type>_<stream>)' })
              .option('stream', { type: 'string', choices: ['upstream', 'downstream', 'both'], describe: 'direction (default downstream)' })
              .option('toxicity', { type: 'number', describe: 'share of connections affected, 0..1 (default 1)' })
              .option('duration', { type: 'string', describe: 'remove the fault after this long (e.g. 30s)' })
              .option('attr', { alias: 'a', type: 'string', array: true, default: [] as string[], describe: 'attribute key=value (repeatable)' }),
          (a) => guard(() => faultAddCommand(target(a), { link: a.link, type: a.type, name: a.name, stream: a.stream, toxicity: a.toxicity, duration: a.duration, attr: a.attr.map(String) }, out))(),
        )
        .command('rm <link> <name>', 'Remove a fault', (z) => z.positional('link', { type: 'string', demandOption: true }).positional('name', { type: 'string', demandOption: true }), (a) => guard(() => faultRmCommand(target(a), a.link, a.name, out))())
        .command('ls', 'List active faults with time left', (z) => z.option('json', { type: 'boolean' }), (a) => guard(() => faultLsCommand(target(a), !!a.json, out))())
        .demandCommand(1, 'give a fault subcommand: add, rm or ls'),
    )
    .command('validate <files..>', 'Check profiles and sidecar configs (file:line: field: reason)', (y) => y.positional('files', { type: 'string', array: true, demandOption: true }), (a) =>
      guard(async () => {
        const { validateFiles } = await import('./validate.js');
        const r = validateFiles(a.files.map(String));
        for (const l of r.lines) (r.ok ? out : (s: string) => process.stderr.write(`${s}\n`))(l);
        if (!r.ok) for (const l of r.lines.filter((x) => x.includes(': ok ('))) out(l);
        return r.ok ? EXIT_OK : EXIT_USAGE;
      })(),
    )
    .demandCommand(1, 'give a command (see --help)')
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`chaos-sidecar: ${msg}\nRun with --help for usage.\n`);
      code = EXIT_USAGE;
    });
  await parser.parseAsync();
  return code;
}

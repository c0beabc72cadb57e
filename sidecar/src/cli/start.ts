/** `chaos-sidecar start`: load config, start links and API, run until SIGINT/SIGTERM. */
import { loadConfig, type ConfigFlags } from '../config.js';
import { startSidecar } from '../app.js';
import { createLogger } from '../logger.js';

export async function startCommand(configFile: string | undefined, flags: ConfigFlags): Promise<void> {
  const cfg = loadConfig(configFile, flags);
  const log = createLogger(cfg.logLevel);
  const running = await startSidecar(cfg, log);
  // One line on stdout that scripts can parse (the API URL matters when --api-port 0).
  const links = running.sidecar.status().links.map((l) => `${l.name}=${l.listen}->${l.upstream}`).join(',');
  process.stdout.write(`chaos-sidecar ready node=${cfg.node} api=${running.apiUrl} seed=${cfg.seed} links=${links || '-'}\n`);
  if (running.profileReport) {
    for (const s of running.profileReport.skipped) process.stdout.write(`profile ${running.profileReport.profile}: skipped ${s.fault}: ${s.reason}\n`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  // The final guard only: links catch errors per connection (Link.guard) and close just that connection. Anything
  // that still escapes is logged and counted, and the process - and its API - stays up.
  process.on('uncaughtException', (err) => {
    running.sidecar.metrics.uncaught.inc();
    log.error({ err: { message: err.message, stack: err.stack } }, 'uncaught exception (kept running)');
  });
  process.on('unhandledRejection', (reason) => {
    running.sidecar.metrics.uncaught.inc();
    log.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) }, 'unhandled rejection (kept running)');
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

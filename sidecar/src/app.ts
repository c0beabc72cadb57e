/** Starting and stopping a whole sidecar (links, API, start-up profile) from a config. */
import type { SidecarConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { Sidecar } from './sidecar.js';
import { ApiServer } from './api/server.js';
import { loadProfile } from './profiles/loader.js';
import type { ApplyReport } from './profiles/runner.js';

export interface RunningSidecar {
  sidecar: Sidecar;
  api: ApiServer;
  apiUrl: string;
  profileReport: ApplyReport | null;
  close(): Promise<void>;
}

export async function startSidecar(cfg: SidecarConfig, log: Logger = createLogger(cfg.logLevel)): Promise<RunningSidecar> {
  const sidecar = new Sidecar({ node: cfg.node, seed: cfg.seed, dialTimeoutMs: cfg.dialTimeoutMs, profilesDir: cfg.profilesDir, maxActiveFaults: cfg.maxActiveFaults, log });
  const api = new ApiServer(sidecar, cfg.api);
  try {
    for (const l of cfg.links) await sidecar.createLink({ ...l });
    // The start-up profile is checked before the API opens, so a bad one stops the start.
    const profile = cfg.profile ? loadProfile(cfg.profile, cfg.profilesDir) : null;
    await api.listen();
    const profileReport = profile ? sidecar.applyProfile(profile) : null;
    log.info({ node: cfg.node, seed: cfg.seed, links: cfg.links.length }, 'sidecar started');
    const host = cfg.api.host.includes(':') ? `[${cfg.api.host}]` : cfg.api.host;
    return {
      sidecar,
      api,
      apiUrl: `http://${host}:${api.port}`,
      profileReport,
      async close() {
        await api.close();
        await sidecar.close();
      },
    };
  } catch (err) {
    await api.close();
    await sidecar.close();
    throw err;
  }
}

/**
 * Sidecar configuration: CLI flags > environment > YAML file > defaults,
 * validated at start; errors name the bad key (and file:line for YAML).
 *
 *   node: a
 *   seed: 42
 *   api: { host: 127.0.0.1, port: 8474, token: s3cret, allowed_hosts: [sidecar-a.internal] }
 *   dial_timeout: 2s
 *   max_active_faults: 100               # safety valve, 0 = no limit
 *   profiles_dir: ../chaos-profiles      # relative to this file
 *   profile: latency                     # applied at start (name or path)
 *   log_level: info
 *   links:
 *     - { name: postgres, listen: 127.0.0.1:15432, upstream: 127.0.0.1:5432, protocol: tcp }
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LinkSpec } from './links/link.js';
import { isLoopback, parseHostPort } from './links/address.js';
import { DEFAULT_PROFILES_DIR } from './profiles/loader.js';
import { randomSeed } from './rng.js';
import { parseTimerMs } from './units.js';
import { YamlSource } from './yaml-source.js';

export interface SidecarConfig {
  node: string;
  seed: number;
  /** allowedHosts: Host/Origin names accepted besides loopback ones (and the bound address). */
  api: { host: string; port: number; token?: string; allowedHosts?: string[] };
  dialTimeoutMs: number;
  profilesDir: string;
  maxActiveFaults: number;
  profile?: string;
  logLevel: string;
  links: LinkSpec[];
}

/** Values given as CLI flags (undefined = not given). */
export interface ConfigFlags {
  node?: string;
  seed?: number | string;
  apiHost?: string;
  apiPort?: number | string;
  token?: string;
  allowedHosts?: string | string[];
  profile?: string;
  profilesDir?: string;
  dialTimeout?: number | string;
  maxActiveFaults?: number | string;
  logLevel?: string;
}

export class ConfigError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const ENV = {
  node: 'CHAOS_SIDECAR_NODE',
  seed: 'CHAOS_SIDECAR_SEED',
  apiHost: 'CHAOS_SIDECAR_API_HOST',
  apiPort: 'CHAOS_SIDECAR_API_PORT',
  token: 'CHAOS_SIDECAR_TOKEN',
  allowedHosts: 'CHAOS_SIDECAR_ALLOWED_HOSTS',
  profile: 'CHAOS_SIDECAR_PROFILE',
  profilesDir: 'CHAOS_SIDECAR_PROFILES_DIR',
  dialTimeout: 'CHAOS_SIDECAR_DIAL_TIMEOUT',
  maxActiveFaults: 'CHAOS_SIDECAR_MAX_ACTIVE_FAULTS',
  logLevel: 'CHAOS_SIDECAR_LOG_LEVEL',
} as const;
const FLAG = {
  node: '--node', seed: '--seed', apiHost: '--api-host', apiPort: '--api-port', token: '--token', allowedHosts: '--allowed-hosts',
  profile: '--profile', profilesDir: '--profiles-dir', dialTimeout: '--dial-timeout', maxActiveFaults: '--max-active-faults', logLevel: '--log-level',
} as const;

function port(v: unknown): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`expected a port 0..65535, got ${JSON.stringify(v)}`);
  return n;
}

function seed(v: unknown): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new Error(`expected a whole number, got ${JSON.stringify(v)}`);
  return n;
}

function count(v: unknown): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`expected a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

function nonEmpty(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw new Error(`expected a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

/** A list of host names, or one comma-separated string of them (flag and environment). */
function hostList(v: unknown): string[] {
  const list = typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && /^[A-Za-z0-9.:*\[\]-]+$/.test(x))) {
    throw new Error(`expected host names (a list, or comma-separated), got ${JSON.stringify(v)}`);
  }
  return (list as string[]).map((h) => h.toLowerCase().replace(/^\[|\]$/g, ''));
}

function logLevel(v: unknown): string {
  if (typeof v !== 'string' || !LOG_LEVELS.includes(v)) throw new Error(`expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

/** Parse and check a config file; returns only what the file sets. */
export function parseConfigFile(text: string, file: string): { values: Partial<Record<keyof ConfigFlags, unknown>>; links: LinkSpec[] } {
  const src = YamlSource.parse(text, file);
  const raw = src.value() ?? {};
  const doc = src.object([], raw, ['node', 'seed', 'api', 'dial_timeout', 'max_active_faults', 'profiles_dir', 'profile', 'log_level', 'links']);
  const values: Partial<Record<keyof ConfigFlags, unknown>> = {};
  const dir = path.dirname(path.resolve(file));
  if (doc.node !== undefined) values.node = src.check(['node'], () => nonEmpty(doc.node));
  if (doc.seed !== undefined) values.seed = src.check(['seed'], () => seed(doc.seed));
  if (doc.api !== undefined) {
    const api = src.object(['api'], doc.api, ['host', 'port', 'token', 'allowed_hosts']);
    if (api.host !== undefined) values.apiHost = src.check(['api', 'host'], () => nonEmpty(api.host));
    if (api.port !== undefined) values.apiPort = src.check(['api', 'port'], () => port(api.port));
    if (api.token !== undefined) values.token = src.check(['api', 'token'], () => nonEmpty(api.token));
    if (api.allowed_hosts !== undefined) values.allowedHosts = src.check(['api', 'allowed_hosts'], () => hostList(api.allowed_hosts));
  }
  if (doc.dial_timeout !== undefined) values.dialTimeout = src.check(['dial_timeout'], () => parseTimerMs(doc.dial_timeout));
  if (doc.max_active_faults !== undefined) values.maxActiveFaults = src.check(['max_active_faults'], () => count(doc.max_active_faults));
  if (doc.profiles_dir !== undefined) values.profilesDir = path.resolve(dir, src.check(['profiles_dir'], () => nonEmpty(doc.profiles_dir)));
  if (doc.profile !== undefined) {
    const p = src.check(['profile'], () => nonEmpty(doc.profile));
    values.profile = p.includes('/') || /\.ya?ml$/.test(p) ? path.resolve(dir, p) : p;
  }
  if (doc.log_level !== undefined) values.logLevel = src.check(['log_level'], () => logLevel(doc.log_level));
  const links: LinkSpec[] = [];
  if (doc.links !== undefined) {
    if (!Array.isArray(doc.links)) src.fail(['links'], 'expected a list of links');
    const names = new Set<string>();
    (doc.links as unknown[]).forEach((l, i) => {
      const p = ['links', i];
      const o = src.object(p, l, ['name', 'listen', 'upstream', 'protocol', 'enabled']);
      for (const k of ['name', 'listen', 'upstream']) if (o[k] === undefined) src.fail(p, `missing required key "${k}"`);
      const name = src.check([...p, 'name'], () => nonEmpty(o.name));
      if (!/^[\w.-]+$/.test(name)) src.fail([...p, 'name'], 'expected letters, digits, ".", "_" or "-"');
      if (names.has(name)) src.fail([...p, 'name'], `duplicate link name ${name}`);
      names.add(name);
      src.check([...p, 'listen'], () => parseHostPort(nonEmpty(o.listen), 'listen'));
      src.check([...p, 'upstream'], () => parseHostPort(nonEmpty(o.upstream), 'upstream'));
      const protocol = (o.protocol ?? 'tcp') as 'tcp' | 'ws';
      if (protocol !== 'tcp' && protocol !== 'ws') src.fail([...p, 'protocol'], 'expected tcp or ws');
      if (o.enabled !== undefined && typeof o.enabled !== 'boolean') src.fail([...p, 'enabled'], 'expected true or false');
      links.push({ name, listen: o.listen as string, upstream: o.upstream as string, protocol, enabled: (o.enabled as boolean | undefined) ?? true });
    });
  }
  return { values, links };
}

export function loadConfig(file: string | undefined, flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  let fromFile: ReturnType<typeof parseConfigFile> = { values: {}, links: [] };
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    fromFile = parseConfigFile(text, file);
  }
  // Highest precedence first: flag, environment, file; each source is checked and named in errors.
  const pick = <T>(key: keyof ConfigFlags, check: (v: unknown) => T, fallback: T): T => {
    const sources: Array<[string, unknown]> = [
      [FLAG[key], flags[key]],
      [`environment ${ENV[key]}`, env[ENV[key]] === '' ? undefined : env[ENV[key]]],
      [`config ${key}`, fromFile.values[key]],
    ];
    for (const [where, v] of sources) {
      if (v === undefined) continue;
      try {
        return check(v);
      } catch (err) {
        throw new ConfigError(`${where}: ${(err as Error).message}`);
      }
    }
    return fallback;
  };
  const cfg: SidecarConfig = {
    node: pick('node', nonEmpty, 'local'),
    seed: pick('seed', seed, randomSeed()),
    api: { host: pick('apiHost', nonEmpty, '127.0.0.1'), port: pick('apiPort', port, 8474) },
    dialTimeoutMs: pick('dialTimeout', (v) => parseTimerMs(v), 2000),
    maxActiveFaults: pick('maxActiveFaults', count, 100),
    profilesDir: pick('profilesDir', (v) => path.resolve(nonEmpty(v)), DEFAULT_PROFILES_DIR),
    logLevel: pick('logLevel', logLevel, 'info'),
    links: fromFile.links,
  };
  const token = pick<string | undefined>('token', nonEmpty, undefined);
  if (token !== undefined) cfg.api.token = token;
  const allowedHosts = pick<string[] | undefined>('allowedHosts', hostList, undefined);
  if (allowedHosts !== undefined) cfg.api.allowedHosts = allowedHosts;
  const profile = pick<string | undefined>('profile', nonEmpty, undefined);
  if (profile !== undefined) cfg.profile = profile;
  if (!isLoopback(cfg.api.host) && cfg.api.token === undefined) {
    throw new ConfigError(`api host ${cfg.api.host} is not a loopback address: set an API token (--token or ${ENV.token}) to expose the API`);
  }
  return cfg;
}

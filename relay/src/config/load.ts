import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { DEFAULT_CONFIG, type RelayConfig } from './schema.js';
import { SETTINGS, envNameOf, flagNameOf, yamlKeyOf, type SettingSpec } from './settings.js';
import { parseRateRules } from '../ratelimit/rules.js';
import { parsePenalties } from '../reputation/offences.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Source = { kind: 'file'; where: string } | { kind: 'env'; where: string } | { kind: 'flag'; where: string };

function describeSource(source: Source): string {
  return source.kind === 'file' ? `in ${source.where}` : source.kind === 'env' ? `from env ${source.where}` : `from flag --${source.where}`;
}

function coerce(spec: SettingSpec, value: unknown, source: Source): unknown {
  const name = yamlKeyOf(spec).join('.');
  const fail = (what: string) =>
    new ConfigError(`config: ${name} ${what} (got ${JSON.stringify(value)} ${describeSource(source)})`);
  const fromText = source.kind !== 'file';
  switch (spec.type) {
    case 'int': {
      const n = typeof value === 'number' ? value : fromText && typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n)) throw fail('must be an integer');
      if (spec.min !== undefined && n < spec.min) throw fail(`must be >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw fail(`must be <= ${spec.max}`);
      return n;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (fromText && typeof value === 'string' && /^(true|false|1|0|yes|no)$/i.test(value)) return /^(true|1|yes)$/i.test(value);
      throw fail('must be true or false');
    }
    case 'list': {
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      if (fromText && typeof value === 'string') return value.split(',').map((s) => s.trim()).filter(Boolean);
      throw fail('must be a list of strings');
    }
    case 'string': {
      if (typeof value !== 'string' && !(typeof value === 'number' && !fromText)) throw fail('must be a string');
      const s = String(value);
      if (spec.choices && !spec.choices.includes(s)) throw fail(`must be one of ${spec.choices.join(', ')}`);
      return s;
    }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  node[parts.at(-1)!] = value;
}

/** Reads a YAML config file; unknown keys are errors that name the file and line. */
function readYaml(file: string): Array<{ spec: SettingSpec; value: unknown; where: string }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config: cannot read ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(`config: ${file}: ${doc.errors[0]!.message}`);
  const data = doc.toJS() as unknown;
  if (data === null || data === undefined) return [];
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`config: ${file}: top level must be a mapping`);
  const byKey = new Map(SETTINGS.map((s) => [yamlKeyOf(s).join('.'), s]));
  const sections = new Set(SETTINGS.filter((s) => s.path.includes('.')).map((s) => yamlKeyOf(s)[0]!));
  const found: Array<{ spec: SettingSpec; value: unknown; where: string }> = [];
  const lineOf = (keyPath: string[]) => {
    const node = doc.getIn(keyPath, true) as { range?: [number, number] } | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? file : `${file}:${text.slice(0, offset).split('\n').length}`;
  };
  const visit = (obj: Record<string, unknown>, prefix: string[]) => {
    for (const [key, value] of Object.entries(obj)) {
      const keyPath = [...prefix, key];
      const dotted = keyPath.join('.');
      if (prefix.length === 0 && sections.has(key) && value && typeof value === 'object' && !Array.isArray(value)) {
        visit(value as Record<string, unknown>, keyPath);
        continue;
      }
      const spec = byKey.get(dotted);
      if (!spec) throw new ConfigError(`config: unknown key "${dotted}" (${lineOf(keyPath)})`);
      found.push({ spec, value, where: lineOf(keyPath) });
    }
  };
  visit(data as Record<string, unknown>, []);
  return found;
}

export interface ConfigSources {
  /** Path of the YAML file, if any. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flag values keyed by flag name (kebab-case), as strings or numbers. */
  flags?: Record<string, unknown>;
}

/** Builds the configuration with precedence flags > env > file > defaults, validating every value. */
export function loadConfig(sources: ConfigSources): RelayConfig {
  const config = structuredClone(DEFAULT_CONFIG) as unknown as Record<string, unknown>;
  if (sources.file) {
    for (const { spec, value, where } of readYaml(sources.file)) setPath(config, spec.path, coerce(spec, value, { kind: 'file', where }));
  }
  const env = sources.env ?? {};
  for (const spec of SETTINGS) {
    const raw = env[envNameOf(spec)];
    if (raw !== undefined && raw !== '') setPath(config, spec.path, coerce(spec, raw, { kind: 'env', where: envNameOf(spec) }));
  }
  const flags = sources.flags ?? {};
  for (const spec of SETTINGS) {
    const raw = flags[flagNameOf(spec)];
    if (raw !== undefined) setPath(config, spec.path, coerce(spec, typeof raw === 'number' ? String(raw) : raw, { kind: 'flag', where: flagNameOf(spec) }));
  }
  const result = config as unknown as RelayConfig;
  validateCrossField(result);
  return result;
}

/** A peer URL: ws:// or wss://, a host, no credentials, bounded length. Returns why it is not, or null. */
export function peerUrlError(url: string): string | null {
  if (url.length > 512) return 'is longer than 512 characters';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') return 'must start with ws:// or wss://';
  if (parsed.username || parsed.password) return 'must not carry credentials';
  if (!parsed.hostname) return 'has no host';
  return null;
}

/**
 * Peering needs an identity bound to a URL: without public_url a relay would accept (and its peers would sign)
 * AUTH relay tags naming any URL, so a server we dial could relay our AUTH elsewhere.
 */
function validatePeering(config: RelayConfig): void {
  const peering = config.peers.length > 0 || config.peerNodeIds.length > 0;
  if (peering && !config.publicUrl) {
    throw new ConfigError('config: public_url is required when peering (peers or peer_node_ids are set): set it to the ws:// or wss:// URL peers dial this relay at (RELAY_PUBLIC_URL, --public-url); add proxy URLs to public_url_aliases');
  }
  for (const [key, urls] of [['public_url', config.publicUrl ? [config.publicUrl] : []], ['public_url_aliases', config.publicUrlAliases], ['peers', config.peers]] as const) {
    for (const url of urls) {
      const error = peerUrlError(url);
      if (error) throw new ConfigError(`config: ${key}: ${JSON.stringify(url)} ${error}`);
    }
  }
  for (const id of config.peerNodeIds) {
    if (!/^[0-9a-fA-F]{64}$/.test(id)) throw new ConfigError(`config: peer_node_ids: ${JSON.stringify(id)} is not a node id (64 hex characters)`);
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

function validateCrossField(config: RelayConfig): void {
  // Structured list settings are parsed here too, so a bad rule stops the relay with a config error, not a stack trace.
  for (const [key, check] of [
    ['rate_limits', () => parseRateRules(config.rateLimits)],
    ['reputation_penalties', () => parsePenalties(config.reputationPenalties)],
  ] as const) {
    try {
      check();
    } catch (err) {
      throw new ConfigError(`config: ${key}: ${(err as Error).message}`);
    }
  }
  if (!isLoopback(config.adminHost) && !config.adminToken) {
    throw new ConfigError(`config: admin_host ${config.adminHost} is not loopback; set admin_token (RELAY_ADMIN_TOKEN) to expose the admin API`);
  }
  validatePeering(config);
  if (config.limits.defaultLimit > config.limits.maxLimit) {
    throw new ConfigError('config: limits.default_limit must be <= limits.max_limit');
  }
  if (config.syncWindowRecords > config.negentropyMaxRecords) {
    throw new ConfigError('config: sync_window_records must be <= negentropy_max_records');
  }
  for (const [key, url, protocols] of [
    ['database_url', config.databaseUrl, ['postgres:', 'postgresql:']],
    ['redis_url', config.redisUrl, ['redis:', 'rediss:']],
  ] as const) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`config: ${key} is not a URL (got ${JSON.stringify(url)})`);
    }
    if (!(protocols as readonly string[]).includes(parsed.protocol)) {
      throw new ConfigError(`config: ${key} must start with ${protocols.join(' or ')}//`);
    }
  }
}

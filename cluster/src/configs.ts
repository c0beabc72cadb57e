/**
 * Files the cluster writes for its processes and its operator: each relay's config.yaml (with the pool settings the
 * runbook greps for), each sidecar's link config, and the shell shims that make the runbook's psql / redis-cli /
 * journalctl commands reach this cluster.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { directEndpoints, paths, relayEndpoints, type ClusterLayout, type NodeLayout } from './layout.js';

/** YAML keys the built relay understands (its config loader rejects unknown keys). */
export async function relayConfigKeys(root: string): Promise<Set<string>> {
  const mod = (await import(join(root, 'relay/dist/config/settings.js'))) as {
    SETTINGS: Array<{ path: string }>;
    yamlKeyOf: (spec: { path: string }) => string[];
  };
  return new Set(mod.SETTINGS.map((s) => mod.yamlKeyOf(s).join('.')));
}

export interface RelayLaunch {
  configFile: string;
  /** Settings the built relay may not know yet go through RELAY_* env vars, which it ignores when unknown. */
  env: Record<string, string>;
}

export function writeRelayConfig(layout: ClusterLayout, node: NodeLayout, known: Set<string>): RelayLaunch {
  const p = paths(layout);
  const ends = relayEndpoints(layout, node);
  // Every other relay dials this one through its own sidecar: those URLs name this relay in AUTH relay tags and
  // identity proofs (public_url, required when peering, and its aliases).
  const namedBy = layout.nodes.flatMap((other) => other.links.filter((l) => l.name === `peer-${node.name}`).map((l) => `ws://${layout.host}:${l.listenPort}`));
  const wanted: Record<string, unknown> = {
    relay_name: `relay-${node.name}`,
    host: layout.host,
    port: node.relayPort,
    admin_host: layout.host,
    admin_port: node.adminPort,
    database_url: ends.databaseUrl,
    db_pool_size: 10,
    db_connect_timeout_ms: 2000,
    db_statement_timeout_ms: 5000,
    redis_url: ends.redisUrl,
    redis_key_prefix: node.redisKeyPrefix,
    data_dir: p.relayData(node.name),
    log_level: 'info',
    peers: ends.peers,
    ...(namedBy.length > 0 ? { public_url: namedBy[0], public_url_aliases: namedBy.slice(1) } : {}),
    // Peers learned from gossip would be dialled directly, around the sidecar, and escape its faults.
    peer_discovery: false,
    heartbeat_interval_ms: 1000,
    heartbeat_timeout_ms: layout.heartbeatTimeoutSeconds * 1000,
    // Reconnect backoff capped at 2 s so a healed link is back well within the runbook's 30 s.
    reconnect_min_ms: 200,
    reconnect_max_ms: 2000,
    // Anti-entropy every 5 s (60 s by default) so that events dropped by a faulty link are repaired well within the sync target.
    sync_interval_ms: 5000,
    // A peer caught forging events is banned automatically (10 min by default). In the byzantine experiment the
    // forger is the sidecar between two honest relays, so bans are kept short to let the cluster heal on its own.
    ban_base_seconds: 10,
    ban_max_seconds: 20,
  };
  const config: Record<string, unknown> = {};
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(wanted)) {
    if (known.has(key)) config[key] = value;
    else env[`RELAY_${key.toUpperCase()}`] = Array.isArray(value) ? value.join(',') : String(value);
  }
  mkdirSync(p.nodeDir(node.name), { recursive: true });
  mkdirSync(p.relayData(node.name), { recursive: true });
  const header = `# relay-${node.name} of the local cluster (written by \`make up\`; regenerated on every start).\n` +
    `# Every dependency goes through sidecar-${node.name} (API ${layout.host}:${node.sidecarApiPort}).\n`;
  writeFileSync(p.relayConfig(node.name), header + stringify(config));
  return { configFile: p.relayConfig(node.name), env };
}

export function writeSidecarConfig(layout: ClusterLayout, node: NodeLayout): string {
  const p = paths(layout);
  const config = {
    node: node.name,
    links: node.links.map((l) => ({ name: l.name, listen: `${layout.host}:${l.listenPort}`, upstream: l.upstream, protocol: l.protocol })),
  };
  mkdirSync(p.nodeDir(node.name), { recursive: true });
  writeFileSync(p.sidecarConfig(node.name), `# sidecar-${node.name}: carries relay-${node.name}'s PostgreSQL, Redis and peer traffic.\n` + stringify(config));
  return p.sidecarConfig(node.name);
}

/**
 * `source .cluster/env.sh` puts shims first on PATH so the runbook's commands work as written:
 * psql and redis-cli reach the private servers (node a by default, CLUSTER_NODE=b for another; not NODE, which npm sets to the node binary), journalctl reads the log files.
 */
export function writeOperatorShims(layout: ClusterLayout, cliPath: string): void {
  const p = paths(layout);
  mkdirSync(p.bin, { recursive: true });
  const first = layout.nodes[0]!;
  const redisCase = layout.nodes.map((n) => `${n.name}) echo ${n.redisDb} ;;`).join(' ');
  const shim = (name: string, body: string) => {
    const file = join(p.bin, name);
    writeFileSync(file, `#!/usr/bin/env bash\n# Shim from ${p.envFile}: ${name} against the local cluster.\nset -euo pipefail\n${body}\n`);
    chmodSync(file, 0o755);
  };
  shim('redis-cli', [
    `db=$(case "\${CLUSTER_NODE:-${first.name}}" in ${redisCase} *) echo "unknown CLUSTER_NODE=\${CLUSTER_NODE}" >&2; exit 2 ;; esac)`,
    'for a in "$@"; do case "$a" in -p|-h|-n|-u) exec /usr/bin/redis-cli "$@" ;; esac; done',
    `exec /usr/bin/redis-cli -h ${layout.host} -p ${layout.redis.port} -n "$db" "$@"`,
  ].join('\n'));
  shim('journalctl', `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(cliPath)} --dir ${JSON.stringify(layout.dir)} journal "$@"`);
  const exportsFor = (n: NodeLayout) => directEndpoints(layout, n);
  writeFileSync(p.envFile, [
    `# source ${p.envFile}  — point the runbook's commands at the local cluster (node ${first.name}; export CLUSTER_NODE=b and re-source for b).`,
    `export CLUSTER_DIR=${JSON.stringify(layout.dir)}`,
    `export PATH=${JSON.stringify(p.bin)}:"$PATH"`,
    `export PGHOST=${layout.host} PGPORT=${layout.postgres.port} PGUSER=${layout.postgres.user}`,
    `case "\${CLUSTER_NODE:-${first.name}}" in ${layout.nodes.map((n) => `${n.name}) export PGDATABASE=${n.database} RELAY_ADMIN=${exportsFor(n).adminUrl} ;;`).join(' ')} esac`,
    '',
  ].join('\n'));
}

import { VERIFIER_CHOICES } from '../crypto/verifier-choice.js';
import type { RelayConfig } from './schema.js';

/** How one setting is read from the YAML file, the environment and the command line. */
export interface SettingSpec {
  /** Dotted path into RelayConfig, e.g. `limits.maxLimit`. */
  path: string;
  type: 'int' | 'string' | 'bool' | 'list';
  min?: number;
  max?: number;
  /** Allowed values for a string setting. */
  choices?: readonly string[];
  describe: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Every setting the relay understands. Names derive from `path`: YAML key `db_pool_size` (nested under
 * `limits:` for limits), env `RELAY_DB_POOL_SIZE` / `RELAY_LIMITS_MAX_LIMIT`, flag `--db-pool-size` / `--max-limit`.
 * Adding a setting means adding a line here and a default in schema.ts.
 */
export const SETTINGS: SettingSpec[] = [
  { path: 'host', type: 'string', describe: 'Client WebSocket listen address' },
  { path: 'port', type: 'int', min: 0, max: 65535, describe: 'Client WebSocket port (NIP-01, NIP-11)' },
  { path: 'adminHost', type: 'string', describe: 'Admin HTTP API listen address' },
  { path: 'adminPort', type: 'int', min: 0, max: 65535, describe: 'Admin HTTP API port' },
  { path: 'adminToken', type: 'string', describe: 'Bearer token required by every admin call but /health' },
  { path: 'adminAllowedHosts', type: 'list', describe: 'Host names the admin API answers to besides loopback and admin_host' },
  { path: 'adminAllowedOrigins', type: 'list', describe: 'Browser origins allowed to call the admin API (default: none)' },
  { path: 'databaseUrl', type: 'string', describe: 'PostgreSQL connection URL' },
  { path: 'dbPoolSize', type: 'int', min: 1, max: 1000, describe: 'PostgreSQL read pool size (REQ queries; one more for counts and admin reads)' },
  { path: 'dbWritePoolSize', type: 'int', min: 2, max: 1000, describe: 'PostgreSQL write pool size (group-commit transactions, duplicate lookups)' },
  { path: 'dbReadQueueSize', type: 'int', min: 1, describe: 'REQ queries waiting for a read connection before more are refused' },
  { path: 'dbStatementTimeoutMs', type: 'int', min: 100, describe: 'Statement timeout, ms' },
  { path: 'dbConnectTimeoutMs', type: 'int', min: 100, describe: 'Wait for a pooled connection, ms' },
  { path: 'dbBatchSize', type: 'int', min: 1, max: 10000, describe: 'Most events per insert transaction' },
  { path: 'redisUrl', type: 'string', describe: 'Redis URL' },
  { path: 'redisKeyPrefix', type: 'string', describe: 'Prefix of every Redis key' },
  { path: 'dedupTtlSeconds', type: 'int', min: 1, describe: 'Lifetime of dedup marks in Redis, seconds' },
  { path: 'cacheRecentEvents', type: 'int', min: 0, describe: 'Recent events kept in the Redis cache' },
  { path: 'verifyWorkers', type: 'int', min: 0, max: 64, describe: 'Signature verification worker threads (0 = main thread)' },
  {
    path: 'verifier',
    type: 'string',
    choices: VERIFIER_CHOICES,
    describe: 'Signature library: auto (native libsecp256k1 if built by `make native`, else tiny-secp256k1 WASM, or noble with 0 workers), native, wasm, noble',
  },
  { path: 'relayName', type: 'string', describe: 'NIP-11 name' },
  { path: 'relayDescription', type: 'string', describe: 'NIP-11 description' },
  { path: 'logLevel', type: 'string', choices: LOG_LEVELS, describe: 'pino log level' },
  { path: 'dataDir', type: 'string', describe: 'Directory for the node key and the journal' },
  { path: 'journalMaxBytes', type: 'int', min: 4096, describe: 'Largest degraded-mode journal, bytes (past it events are refused)' },
  { path: 'replayBatchSize', type: 'int', min: 1, max: 100000, describe: 'Journal events per replay step' },
  { path: 'redisQuarantineMax', type: 'int', min: 0, describe: 'Entries kept in the Redis quarantine list of bad values read back from Redis (0: only logged and counted)' },
  { path: 'rateLimits', type: 'list', describe: 'Rate limits scope:kinds:count/window, scope connection|ip|pubkey|peer (empty: none)' },
  { path: 'reputationBanThreshold', type: 'int', min: -1000, max: 99, describe: 'Reputation score (100 = clean) at or below which a subject is banned' },
  { path: 'reputationRecoveryPerMinute', type: 'int', min: 0, describe: 'Reputation points regained per minute' },
  { path: 'reputationPenalties', type: 'list', describe: 'Penalty overrides offence=points (signature, id, shape, malformed, rate-limit, gossip)' },
  { path: 'reputationExempt', type: 'list', describe: 'IPs or node ids never banned automatically' },
  { path: 'banBaseSeconds', type: 'int', min: 1, describe: 'Length of a first automatic ban, seconds' },
  { path: 'banEscalation', type: 'int', min: 1, max: 100, describe: 'Each repeated automatic ban lasts this many times longer' },
  { path: 'banMaxSeconds', type: 'int', min: 1, describe: 'Longest automatic ban, seconds' },
  { path: 'peers', type: 'list', describe: 'Peer relay URLs to dial (ws://host:port, through the sidecar in a cluster)' },
  { path: 'publicUrl', type: 'string', describe: 'URL peers reach this relay at (ws:// or wss://): announced in gossip, required in peer AUTH relay tags; required when peering' },
  { path: 'publicUrlAliases', type: 'list', describe: 'Other URLs peers reach this relay at (their proxies), accepted in AUTH relay tags and identity proofs' },
  { path: 'peerNodeIds', type: 'list', describe: 'Node ids (64 hex) allowed to authenticate as peers, besides those our configured peers prove' },
  { path: 'peerDiscovery', type: 'bool', describe: 'Also dial peers announced by allow-listed peers (off by default)' },
  { path: 'peerDiscoveryMaxLinks', type: 'int', min: 0, max: 1000, describe: 'Most peer links discovery may add' },
  { path: 'peerSyncRate', type: 'int', min: 0, describe: 'Events/s per peer for anti-entropy fetches, pushes and queue drains (0: half our peer rate limit)' },
  { path: 'heartbeatIntervalMs', type: 'int', min: 50, describe: 'Peer heartbeat (WebSocket ping) and gossip interval, ms' },
  { path: 'heartbeatTimeoutMs', type: 'int', min: 100, describe: 'Silence after which a peer is down, ms' },
  { path: 'reconnectMinMs', type: 'int', min: 10, describe: 'First peer reconnect delay, ms (doubles per failure)' },
  { path: 'reconnectMaxMs', type: 'int', min: 10, describe: 'Longest peer reconnect delay, ms' },
  { path: 'peerQueueSize', type: 'int', min: 0, describe: 'Events queued for a peer that is down (overflow: reconciled on return)' },
  { path: 'peerMaxHops', type: 'int', min: 1, max: 64, describe: 'Most relay-to-relay hops a forwarded event travels' },
  { path: 'syncIntervalMs', type: 'int', min: 0, describe: 'Negentropy anti-entropy period per peer, ms (0: only when a link comes up)' },
  { path: 'syncWindowSeconds', type: 'int', min: 0, describe: 'Reconcile events newer than this many seconds (0: the whole set)' },
  { path: 'syncWindowRecords', type: 'int', min: 1, describe: 'Most of our records per reconciliation window: sync runs one NIP-77 session per time window, so memory is bounded by the window, not the set (<= negentropy_max_records)' },
  { path: 'negentropyMaxRecords', type: 'int', min: 1, describe: 'Most records one NIP-77 session reconciles' },
  { path: 'negentropyOpenTimeoutMs', type: 'int', min: 100, max: 600000, describe: 'Wait for the answer to NEG-OPEN before a peer is taken as one without NIP-77 (REQ catch-up instead), ms' },
  { path: 'reqCatchupOverlapSeconds', type: 'int', min: 0, max: 86400, describe: 'REQ catch-up with a peer without NIP-77 re-reads this many seconds before its cursor (late or clock-skewed events)' },
  { path: 'reqCatchupPageSize', type: 'int', min: 10, max: 5000, describe: 'Events per REQ page of the catch-up with a peer without NIP-77 (pages walk back with `until`)' },
  { path: 'limits.maxMessageLength', type: 'int', min: 256, describe: 'Largest WebSocket message, bytes' },
  { path: 'limits.maxSubscriptions', type: 'int', min: 1, describe: 'Open subscriptions per connection' },
  { path: 'limits.maxFilters', type: 'int', min: 1, describe: 'Filters per REQ' },
  { path: 'limits.maxLimit', type: 'int', min: 1, describe: 'Largest `limit` served (larger ones are clamped)' },
  { path: 'limits.defaultLimit', type: 'int', min: 1, describe: '`limit` applied when a filter has none' },
  { path: 'limits.maxSubidLength', type: 'int', min: 1, max: 1024, describe: 'Longest subscription id' },
  { path: 'limits.maxEventTags', type: 'int', min: 1, describe: 'Most tags in one event' },
  { path: 'limits.maxContentLength', type: 'int', min: 1, describe: 'Longest event content, characters' },
  { path: 'limits.maxFilterValues', type: 'int', min: 1, describe: 'Most values in one filter list' },
  { path: 'limits.createdAtLowerLimit', type: 'int', min: 0, describe: 'How old created_at may be, seconds (0 = any)' },
  { path: 'limits.createdAtUpperLimit', type: 'int', min: 0, describe: 'How far ahead created_at may be, seconds' },
  { path: 'limits.maxInflightPerConnection', type: 'int', min: 1, describe: 'Events in flight before a connection is paused' },
  { path: 'limits.queryTimeoutMs', type: 'int', min: 100, describe: 'Deadline of a REQ initial query, ms' },
  { path: 'limits.reqRatePerSecond', type: 'int', min: 1, describe: 'REQs per second per connection (past it: CLOSED rate-limited)' },
  { path: 'limits.reqBurst', type: 'int', min: 1, describe: 'REQ burst per connection before req_rate_per_second applies' },
  { path: 'limits.reqRatePerIp', type: 'int', min: 0, describe: 'REQs per second from one IP over all its connections (0 = unlimited)' },
  { path: 'limits.maxSubscriptionsPerIp', type: 'int', min: 0, describe: 'Open subscriptions from one IP over all its connections (0 = unlimited)' },
  { path: 'limits.maxConnectionsPerIp', type: 'int', min: 0, describe: 'WebSocket connections one IP may hold open, proven peers not counted (past it: HTTP 429; 0 = unlimited)' },
  { path: 'limits.maxConnections', type: 'int', min: 0, describe: 'WebSocket connections open at once, peers included (past it: HTTP 503; 0 = unlimited)' },
  { path: 'limits.maxQueriesPerConnection', type: 'int', min: 1, describe: 'REQ initial queries running at once per connection' },
  { path: 'limits.maxQueries', type: 'int', min: 1, describe: 'REQ initial queries running at once across the relay' },
  { path: 'limits.negentropyClientMaxRecords', type: 'int', min: 0, describe: 'Most records a NIP-77 session of a client (not a proven peer) reconciles' },
  { path: 'limits.negentropyClientSessions', type: 'int', min: 0, describe: 'NIP-77 sessions a client (not a proven peer) may hold (0 = peers only)' },
];

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export const yamlKeyOf = (spec: SettingSpec) => spec.path.split('.').map(snake);
export const envNameOf = (spec: SettingSpec) => 'RELAY_' + spec.path.split('.').map(snake).join('_').toUpperCase();
export const flagNameOf = (spec: SettingSpec) => kebab(spec.path.split('.').at(-1)!);

export type ConfigPath = keyof RelayConfig | `limits.${keyof RelayConfig['limits']}`;

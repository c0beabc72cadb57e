import type { VerifierChoice } from '../crypto/verifier-choice.js';

/** The relay's whole configuration. Every key can come from the YAML file, an env var or a flag (see load.ts). */
export interface RelayConfig {
  /** Client WebSocket listener (NIP-01) and NIP-11 document. */
  host: string;
  port: number;
  /** Admin HTTP API. */
  adminHost: string;
  adminPort: number;
  /** Required for mutating admin calls when set; required to bind the admin API off loopback. */
  adminToken: string | undefined;
  /** Host header names the admin API answers to besides loopback and admin_host (DNS rebinding guard). */
  adminAllowedHosts: string[];
  /** Browser origins allowed to call the admin API; any other request with an Origin header is refused (CSRF). */
  adminAllowedOrigins: string[];
  databaseUrl: string;
  /** Connections serving REQ queries (the read pool; counts and admin reads get one more). */
  dbPoolSize: number;
  /** Connections carrying write transactions and duplicate-check lookups (separate from reads). */
  dbWritePoolSize: number;
  /** Most REQ queries waiting for a read connection; past it a REQ is refused at once. */
  dbReadQueueSize: number;
  /** Per-statement timeout in ms (slow queries fail instead of piling up). */
  dbStatementTimeoutMs: number;
  /** How long a caller waits for a pooled connection before the pool counts as exhausted. */
  dbConnectTimeoutMs: number;
  /** Most events one insert transaction carries (group commit). */
  dbBatchSize: number;
  redisUrl: string;
  /** Prefix of every Redis key this relay writes, so several relays can share one Redis. */
  redisKeyPrefix: string;
  /** Lifetime of dedup marks in Redis, seconds. */
  dedupTtlSeconds: number;
  /** How many recent events the Redis cache keeps. */
  cacheRecentEvents: number;
  /** Worker threads verifying signatures (0 = verify on the main thread with the reference implementation). */
  verifyWorkers: number;
  /** Which BIP-340 library verifies (auto: the native libsecp256k1 addon when built, else WASM / noble). */
  verifier: VerifierChoice;
  /** NIP-11 name/description. */
  relayName: string;
  relayDescription: string;
  limits: RelayLimits;
  logLevel: string;
  /** Where the node key and the journal live. */
  dataDir: string;
  /** Largest size of the degraded-mode journal (<dataDir>/journal/journal.log); past it events are refused. */
  journalMaxBytes: number;
  /** Journal events handed to PostgreSQL per replay step. */
  replayBatchSize: number;
  /** Most entries kept in the Redis quarantine list (bad values found in the write buffer, cache or dedup marks). */
  redisQuarantineMax: number;
  /** Rate limit rules `scope:kinds:count/window` (see docs/BYZANTINE.md); empty: no rate limits. */
  rateLimits: string[];
  /** A reputation score (100 = clean) at or below this bans the subject automatically. */
  reputationBanThreshold: number;
  /** Points a score regains per minute without offences. */
  reputationRecoveryPerMinute: number;
  /** Penalty overrides `offence=points` (signature, id, shape, malformed, rate-limit, gossip). */
  reputationPenalties: string[];
  /** Subjects (IPs, node ids) scored but never banned automatically: loopback, where a local proxy shows every client. */
  reputationExempt: string[];
  /** First automatic ban, seconds; each repeat lasts ban_escalation times longer, up to ban_max_seconds. */
  banBaseSeconds: number;
  banEscalation: number;
  banMaxSeconds: number;
  /** Peering (docs/PEERING.md): seed peer URLs, our public URL, discovery, heartbeats, queues, anti-entropy. */
  peers: string[];
  publicUrl: string | undefined;
  /** Other URLs peers dial us at (each peer's own proxy): accepted in AUTH relay tags and identity proofs. */
  publicUrlAliases: string[];
  /** Node ids allowed to authenticate as peers, besides those our configured peer links prove. */
  peerNodeIds: string[];
  peerDiscovery: boolean;
  /** Most links discovery may add (learned from allow-listed peers only). */
  peerDiscoveryMaxLinks: number;
  /** Events per second anti-entropy fetches/pushes and queue drains send per peer (0: half our peer rate limit). */
  peerSyncRate: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  peerQueueSize: number;
  peerMaxHops: number;
  syncIntervalMs: number;
  syncWindowSeconds: number;
  /** Most of our records in one reconciliation window (one NIP-77 session per window). */
  syncWindowRecords: number;
  negentropyMaxRecords: number;
  /** Wait for the answer to our NEG-OPEN before taking the peer as one without NIP-77 (REQ catch-up instead). */
  negentropyOpenTimeoutMs: number;
  /** REQ catch-up (peers without NIP-77): seconds re-read before the cursor, and events per page. */
  reqCatchupOverlapSeconds: number;
  reqCatchupPageSize: number;
}

/** Every limit here is advertised in NIP-11 and enforced. */
export interface RelayLimits {
  maxMessageLength: number;
  maxSubscriptions: number;
  maxFilters: number;
  maxLimit: number;
  defaultLimit: number;
  maxSubidLength: number;
  maxEventTags: number;
  maxContentLength: number;
  /** Largest number of values in one filter list. */
  maxFilterValues: number;
  /** created_at may be at most this far in the past (0 = unlimited) / future, seconds. */
  createdAtLowerLimit: number;
  createdAtUpperLimit: number;
  /** Events a connection may have in flight before its socket is paused (backpressure). */
  maxInflightPerConnection: number;
  /** Seconds a REQ's initial query may take before it is CLOSED with `error:`. */
  queryTimeoutMs: number;
  /** REQs one connection may send per second (token bucket, bursts of req_burst); past it: CLOSED `rate-limited:`. */
  reqRatePerSecond: number;
  reqBurst: number;
  /** REQs all connections from one IP address may send per second (bursts of twice that); 0 = unlimited. */
  reqRatePerIp: number;
  /** Open subscriptions all connections from one IP address may hold (0 = unlimited; proven peers never refused). */
  maxSubscriptionsPerIp: number;
  /** WebSocket connections one IP address may hold open, proven peers not counted (0 = unlimited). */
  maxConnectionsPerIp: number;
  /** WebSocket connections the relay holds open at once, peers included (0 = unlimited). */
  maxConnections: number;
  /** Initial REQ queries one connection may have running at once (the rest wait their turn). */
  maxQueriesPerConnection: number;
  /** Initial REQ queries running at once across the relay (the rest wait, within query_timeout_ms). */
  maxQueries: number;
  /** Most records a NIP-77 session opened by a client (not a proven peer) may reconcile. */
  negentropyClientMaxRecords: number;
  /** NIP-77 sessions a client (not a proven peer) may hold open at once. */
  negentropyClientSessions: number;
}

export const DEFAULT_CONFIG: RelayConfig = {
  host: '127.0.0.1',
  port: 7777,
  adminHost: '127.0.0.1',
  adminPort: 8080,
  adminToken: undefined,
  adminAllowedHosts: [],
  adminAllowedOrigins: [],
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/nostr_relay',
  dbPoolSize: 10,
  dbWritePoolSize: 4,
  dbReadQueueSize: 1000,
  dbStatementTimeoutMs: 5000,
  dbConnectTimeoutMs: 2000,
  dbBatchSize: 500,
  redisUrl: 'redis://127.0.0.1:6379/0',
  redisKeyPrefix: 'relay:',
  dedupTtlSeconds: 3600,
  cacheRecentEvents: 10000,
  verifyWorkers: 2,
  verifier: 'auto',
  relayName: 'chaos-relay',
  relayDescription: 'A resilient Nostr relay (NIP-01) on PostgreSQL and Redis',
  limits: {
    maxMessageLength: 131072,
    maxSubscriptions: 20,
    maxFilters: 10,
    maxLimit: 5000,
    defaultLimit: 500,
    maxSubidLength: 64,
    maxEventTags: 2500,
    maxContentLength: 65536,
    maxFilterValues: 1000,
    createdAtLowerLimit: 0,
    createdAtUpperLimit: 900,
    maxInflightPerConnection: 1000,
    queryTimeoutMs: 4000,
    reqRatePerSecond: 20,
    reqBurst: 50,
    reqRatePerIp: 200,
    maxSubscriptionsPerIp: 500,
    maxConnectionsPerIp: 500,
    maxConnections: 20000,
    maxQueriesPerConnection: 4,
    maxQueries: 32,
    negentropyClientMaxRecords: 10000,
    negentropyClientSessions: 1,
  },
  logLevel: 'info',
  dataDir: './data/relay',
  journalMaxBytes: 256 * 1024 * 1024,
  replayBatchSize: 2000,
  redisQuarantineMax: 1000,
  rateLimits: ['connection:*:2000/10s', 'ip:*:10000/10s', 'pubkey:*:2000/10s', 'peer:*:20000/10s'],
  reputationBanThreshold: 0,
  reputationRecoveryPerMinute: 10,
  reputationPenalties: [],
  reputationExempt: ['127.0.0.1', '::1'],
  banBaseSeconds: 600,
  banEscalation: 4,
  banMaxSeconds: 604800,
  peers: [],
  publicUrl: undefined,
  publicUrlAliases: [],
  peerNodeIds: [],
  peerDiscovery: false,
  peerDiscoveryMaxLinks: 8,
  peerSyncRate: 0,
  heartbeatIntervalMs: 5000,
  heartbeatTimeoutMs: 30000,
  reconnectMinMs: 1000,
  reconnectMaxMs: 16000,
  peerQueueSize: 10000,
  peerMaxHops: 8,
  syncIntervalMs: 60000,
  syncWindowSeconds: 0,
  syncWindowRecords: 50000,
  negentropyMaxRecords: 1000000,
  negentropyOpenTimeoutMs: 10000,
  reqCatchupOverlapSeconds: 60,
  reqCatchupPageSize: 500,
};

import pg from 'pg';
import type { Relay } from '../app.js';
import { NodeKey } from '../identity/node-key.js';
import { negentropyHandlers } from '../negentropy/responder.js';
import { EventTimeChanges } from '../negentropy/time-changes.js';
import { WindowSummaries } from '../negentropy/window-summaries.js';
import { AntiEntropy } from './anti-entropy.js';
import { Forwarder } from './forwarder.js';
import { Counter } from 'prom-client';
import { parseRateRules } from '../ratelimit/rules.js';
import { PeerAllowList } from '../security/peer-allow-list.js';
import { Gossip, GOSSIP_KIND } from './gossip.js';
import { gossipGuard } from './gossip-guard.js';
import { PeeringMetrics } from './metrics.js';
import { syncRate } from './pacer.js';
import { attachPeerAuth } from './peer-auth.js';
import { peerProveHandler } from './peer-proof.js';
import { PeerManager } from './peer-manager.js';
import { registerPeeringRoutes } from './routes.js';
import { SyncCursorStore } from './sync-cursors.js';

/** Largest NEG-MSG our responder sends, bytes before hex (peers read with a 64 MB frame limit). */
const RESPONDER_FRAME_LIMIT = 500_000;
const NEG_SESSIONS_PER_CONNECTION = 8;
/** Responder-side window caches, one per proven peer node id (peers are configured or allow-listed: few). */
const MAX_PEER_WINDOW_CACHES = 64;

/**
 * Wires the relay network into a relay: node identity (sets relay.nodeId), NIP-42 peer authentication,
 * the NIP-77 responder, PEER-HOPS, live forwarding, gossip, anti-entropy, admin routes and metrics.
 * Dialling starts with `start()`, once the relay listens (our own URL needs the port).
 */
export function attachPeering(relay: Relay): PeerManager {
  const { config, server, pipeline, admin } = relay;
  const log = relay.log.child({ component: 'peers' });
  const { key, created, path } = NodeKey.loadOrCreate(config.dataDir);
  relay.nodeId = key.nodeId;
  log.info({ nodeId: key.nodeId, keyFile: path }, created ? 'node key created' : 'node key loaded');

  // Own small pool: negentropy scans read many rows and must not take connections from event writes.
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 3, connectionTimeoutMillis: config.dbConnectTimeoutMs, statement_timeout: 60_000 });
  pool.on('error', (err) => log.warn({ err }, 'idle negentropy PostgreSQL connection failed'));

  const directUrl = () => `ws://${config.host.includes(':') ? `[${config.host}]` : config.host}:${relay.ports.relay}`;
  const ourUrl = () => config.publicUrl ?? directUrl();
  // Every URL that names this relay: AUTH relay tags and identity proofs must name one of them.
  const ourUrls = () => [...(config.publicUrl ? [config.publicUrl] : []), ...config.publicUrlAliases, directUrl()];
  const isBanned = (nodeId: string) => relay.access.isBanned(nodeId);
  const allowList = new PeerAllowList(config.peerNodeIds, key.nodeId);
  const verify = (id: string, pubkey: string, sig: string) => relay.verifier.verify(id, pubkey, sig);
  const rate = syncRate(config.peerSyncRate, parseRateRules(config.rateLimits));

  const manager = new PeerManager({
    settings: {
      peers: config.peers,
      discovery: config.peerDiscovery,
      discoveryMaxLinks: config.peerDiscoveryMaxLinks,
      syncRate: rate,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      reconnectMinMs: config.reconnectMinMs,
      reconnectMaxMs: config.reconnectMaxMs,
      queueSize: config.peerQueueSize,
      syncIntervalMs: config.syncIntervalMs,
      // As our own client port takes: 4x max_message_length (peer-link.ts keeps a 4 MB floor for NEG-MSG frames).
      maxInboundPayload: 4 * config.limits.maxMessageLength,
    },
    nodeKey: key,
    ourUrl,
    isBanned,
    allowList,
    verify,
    submitLive: (event, source) => pipeline.submit(event, source),
    logger: relay.log,
  });
  const metrics = new PeeringMetrics(relay.metrics.registry, {
    links: () => manager.list().map((l) => ({ url: l.url, state: l.state, depth: l.queue.depth })),
    partitioned: () => manager.gossip.view().partitioned,
    unreachable: () => manager.gossip.view().unreachable.length,
  });
  manager.metrics = metrics;
  manager.forwarder = new Forwarder(() => manager.list(), config.peerMaxHops, metrics, relay.log);
  manager.gossip = new Gossip({
    nodeKey: key,
    ourUrl,
    intervalMs: config.heartbeatIntervalMs,
    staleAfterMs: Math.max(3 * config.heartbeatIntervalMs, config.heartbeatTimeoutMs),
    links: () => manager.list(),
    isBanned,
    broadcast: (raw, id) => manager.forwarder.broadcast(raw, id),
    learn: (nodeId, url, author) => manager.learn(nodeId, url, author),
    trustsMembersOf: (author) => allowList.allows(author),
    logger: relay.log,
  });
  // Fingerprints of our reconciliation windows (one cache, our windows) and of each peer's windows (one cache per
  // proven peer, answered as responder), forgotten window by window as the events table changes.
  const changes = new EventTimeChanges(pool, relay.log);
  const ownWindows = new WindowSummaries();
  changes.subscribe(ownWindows);
  const peerWindows = new Map<string, WindowSummaries>();
  const windowsOf = (nodeId: string): WindowSummaries | null => {
    let w = peerWindows.get(nodeId);
    if (!w) {
      if (peerWindows.size >= MAX_PEER_WINDOW_CACHES) return null;
      peerWindows.set(nodeId, (w = new WindowSummaries()));
      changes.subscribe(w);
    }
    return w;
  };
  changes.start();
  const cursors = new SyncCursorStore(pool, (err, url) => log.warn({ err, peerUrl: url }, 'writing the REQ catch-up cursor failed'));
  manager.antiEntropy = new AntiEntropy({
    pool,
    store: relay.store,
    pipeline,
    windowSeconds: config.syncWindowSeconds,
    maxRecords: config.negentropyMaxRecords,
    windowRecords: config.syncWindowRecords,
    summaries: ownWindows,
    changes,
    metrics,
    sourceFor: (link) => manager.sourceFor(link),
    fetchRate: rate,
    openTimeoutMs: config.negentropyOpenTimeoutMs,
    cursors,
    catchupOverlapSeconds: config.reqCatchupOverlapSeconds,
    catchupPageSize: config.reqCatchupPageSize,
    logger: relay.log,
  });
  pipeline.addGuard(
    gossipGuard({
      verify,
      report: (subject, offence) => relay.access.report?.(subject, offence),
      refused: new Counter({ name: 'relay_gossip_refused_total', help: 'Gossip events refused before acceptance (malformed, or sent by a client)', labelNames: ['reason', 'source'], registers: [relay.metrics.registry] }),
      logger: relay.log,
    }),
  );

  const auth = attachPeerAuth({
    verifier: relay.verifier,
    acceptedRelayUrls: () => (config.publicUrl ? ourUrls() : []),
    isBanned,
    allowList,
    logger: relay.log,
    count: (outcome) => metrics.authRoles.inc({ outcome }),
    onPeerAuthenticated: (connection, nodeId, url) => {
      log.info({ nodeId, url, address: connection.address }, 'peer authenticated');
      if (url) manager.learn(nodeId, url, nodeId);
    },
  });
  server.onClientConnected(auth.onConnected);
  server.handlers.set('AUTH', auth.handler);
  server.handlers.set('PEER-HOPS', manager.forwarder.peerHopsHandler());
  server.handlers.set('PEER-PROVE', peerProveHandler(key, ourUrls));
  const neg = negentropyHandlers({
    pool,
    limits: config.limits,
    maxRecords: config.negentropyMaxRecords,
    maxSessionsPerConnection: NEG_SESSIONS_PER_CONNECTION,
    frameSizeLimit: RESPONDER_FRAME_LIMIT,
    summariesFor: (c) => (c.source.kind === 'peer' ? windowsOf(c.source.nodeId) : null),
    changes,
    onCachedMatch: () => metrics.syncCachedMatches.inc(),
    logger: relay.log,
  });
  for (const [type, handler] of Object.entries(neg)) server.handlers.set(type, handler);

  pipeline.onAccepted((item, source) => {
    if (item.event.kind === GOSSIP_KIND) manager.gossip.receive(item.event, source);
    manager.forwarder.onAccepted(item, source);
  });

  relay.access.onBanned((subject, reason) => {
    manager.onBanned(subject, reason);
    for (const c of server.connections) if (c.source.kind === 'peer' && c.source.nodeId === subject) c.close(1008, 'banned');
  });
  relay.access.onUnbanned((subject) => manager.onUnbanned(subject));

  registerPeeringRoutes(admin, manager, server, key.nodeId, isBanned);
  relay.addStatus(() => {
    const view = manager.gossip.view();
    return { peers: { configured: config.peers.length, up: manager.list().filter((l) => l.isUp).length, partitioned: view.partitioned } };
  });
  relay.onStop(async () => {
    manager.stop();
    changes.stop();
    await cursors.flush();
    await pool.end();
  });
  log.info({ publicUrl: config.publicUrl ?? null, aliases: config.publicUrlAliases, allowListed: config.peerNodeIds.length, discovery: config.peerDiscovery, syncRate: rate }, 'peering identity');
  return manager;
}

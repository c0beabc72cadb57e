import type { AdminServer } from '../admin/admin-server.js';
import type { RelayServer } from '../server/relay-server.js';
import type { PeerManager } from './peer-manager.js';

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

/** GET /admin/peers, /admin/gossip/status, /admin/gossip/sync-status; POST /admin/gossip/sync runs a round now. */
export function registerPeeringRoutes(admin: AdminServer, manager: PeerManager, server: RelayServer, nodeId: string, isBanned: (id: string) => boolean): void {
  admin.route('GET', '/admin/peers', () => ({
    nodeId,
    // Banned nodes leave the peer list entirely (the runbook checks `curl /admin/peers | grep <id>` finds nothing);
    // their links stay cut until unbanned, and /admin/bans lists who they are.
    peers: manager.list().filter((l) => l.state !== 'banned' && !(l.remoteNodeId && isBanned(l.remoteNodeId))).map((l) => ({
      nodeId: l.remoteNodeId,
      url: l.url,
      origin: l.options.origin,
      state: l.state,
      authenticated: l.authenticated,
      rttMs: l.isUp ? l.heartbeat.rttMs : null,
      lastHeard: l.remoteNodeId || l.isUp ? iso(l.heartbeat.lastHeard) : null,
      upSince: iso(l.upSince),
      downSince: iso(l.downSince),
      queueDepth: l.queue.depth,
      queueOverflowed: l.queue.overflowed,
      lastError: l.lastError,
    })),
    bannedLinks: manager.list().filter((l) => l.state === 'banned' || (l.remoteNodeId && isBanned(l.remoteNodeId))).length,
    inbound: [...server.connections].flatMap((c) => (c.source.kind === 'peer' ? [{ nodeId: c.source.nodeId, url: c.source.url, address: c.address }] : [])),
  }));

  admin.route('GET', '/admin/gossip/status', () => ({ nodeId, ...manager.gossip.view() }));

  admin.route('GET', '/admin/gossip/sync-status', () => ({ nodeId, peers: manager.antiEntropy.list() }));

  admin.route('POST', '/admin/gossip/sync', async () => ({ nodeId, peers: await manager.syncAll('requested by admin') }));
}

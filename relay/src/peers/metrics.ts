import { Counter, Gauge, type Registry } from 'prom-client';

const STATES = ['connecting', 'up', 'suspect', 'down', 'banned'] as const;

/** Peering metrics on the relay's registry. Gauges are filled at scrape time from the live links. */
export class PeeringMetrics {
  readonly forwarded: Counter;
  readonly syncDifferences: Counter;
  readonly syncCachedMatches: Counter;
  readonly syncRuns: Counter;
  readonly queueOverflows: Counter;
  readonly identityProofs: Counter;
  readonly authRoles: Counter;

  constructor(registry: Registry, live: { links: () => Array<{ url: string; state: string; depth: number }>; partitioned: () => boolean; unreachable: () => number }) {
    const registers = [registry];
    new Gauge({
      name: 'relay_peer_state',
      help: 'Peer link state (1 for the current state of each peer url)',
      labelNames: ['peer', 'state'],
      registers,
      collect() {
        this.reset();
        for (const link of live.links()) for (const s of STATES) this.set({ peer: link.url, state: s }, link.state === s ? 1 : 0);
      },
    });
    new Gauge({
      name: 'relay_peer_queue_depth',
      help: 'Events queued for a peer that is down',
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const link of live.links()) this.set({ peer: link.url }, link.depth);
      },
    });
    new Gauge({
      name: 'relay_gossip_partitioned',
      help: '1 while known members are unreachable (partition or dead nodes)',
      registers,
      collect() {
        this.set(live.partitioned() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'relay_gossip_unreachable_members',
      help: 'Known members unreachable directly or through others',
      registers,
      collect() {
        this.set(live.unreachable());
      },
    });
    this.forwarded = new Counter({ name: 'relay_peer_forwarded_events_total', help: 'Events forwarded live to peers', labelNames: ['peer'], registers });
    this.syncCachedMatches = new Counter({ name: 'relay_sync_cached_window_matches_total', help: "Peers' NEG-OPENs of a time window answered from its cached fingerprint (equal, no records loaded)", registers });
    this.syncDifferences = new Counter({ name: 'relay_sync_differences_total', help: 'Differences found by negentropy, by direction (need: fetched, have: pushed)', labelNames: ['peer', 'direction'], registers });
    this.syncRuns = new Counter({ name: 'relay_sync_runs_total', help: 'Anti-entropy runs by outcome', labelNames: ['peer', 'outcome'], registers });
    this.identityProofs = new Counter({ name: 'relay_peer_identity_proofs_total', help: 'Node id proofs of dialled peers by outcome (proven, missing, refused)', labelNames: ['outcome'], registers });
    this.authRoles = new Counter({ name: 'relay_auth_total', help: 'NIP-42 AUTH answers by outcome: peer, client (not an allowed peer), refused', labelNames: ['outcome'], registers });
    this.queueOverflows = new Counter({ name: 'relay_peer_queue_overflows_total', help: 'Peer queue overflows (the peer is reconciled on return)', labelNames: ['peer'], registers });
  }
}

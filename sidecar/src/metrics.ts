/**
 * Prometheus metrics. Hot-path numbers (bytes, connections, faults fired) are
 * plain counters on the links, read at scrape time, so proxying pays nothing
 * for them; fault add/remove events are counted as they happen.
 */
import client from 'prom-client';
import type { Link } from './links/link.js';

export interface MetricsSource {
  links(): Iterable<Link>;
  firedCounts(): Map<string, number>; // key: link|type
}

export function createMetrics(src: MetricsSource) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'chaos_sidecar_' });

  const bytes = new client.Counter({
    name: 'chaos_sidecar_bytes_total',
    help: 'Bytes relayed, by link and direction (upstream = client to server)',
    labelNames: ['link', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) {
        if (l.stats.bytesUpstream) this.inc({ link: l.name, direction: 'upstream' }, l.stats.bytesUpstream);
        if (l.stats.bytesDownstream) this.inc({ link: l.name, direction: 'downstream' }, l.stats.bytesDownstream);
      }
    },
  });
  const connections = new client.Counter({
    name: 'chaos_sidecar_connections_total',
    help: 'Client connections proxied (accepted and dialled), by link',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) if (l.stats.connectionsTotal) this.inc({ link: l.name }, l.stats.connectionsTotal);
    },
  });
  const intercepted = new client.Counter({
    name: 'chaos_sidecar_intercepted_connections_total',
    help: 'New connections refused, black-holed or answered by a fault, by link',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) if (l.stats.refused) this.inc({ link: l.name }, l.stats.refused);
    },
  });
  const dialFailures = new client.Counter({
    name: 'chaos_sidecar_upstream_dial_failures_total',
    help: 'Upstream dials that failed or timed out, by link',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) if (l.stats.dialFailures) this.inc({ link: l.name }, l.stats.dialFailures);
    },
  });
  const badHandshakes = new client.Counter({
    name: 'chaos_sidecar_bad_handshakes_total',
    help: 'Client WebSocket upgrades refused as malformed before any upstream dial, by link',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) if (l.stats.badHandshakes) this.inc({ link: l.name }, l.stats.badHandshakes);
    },
  });
  const active = new client.Gauge({
    name: 'chaos_sidecar_active_connections',
    help: 'Open proxied connections, by link',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) this.set({ link: l.name }, l.conns.size);
    },
  });
  const fired = new client.Counter({
    name: 'chaos_sidecar_faults_fired_total',
    help: 'Fault events (a delayed chunk, a dropped message, a refused connection...), by link and fault type',
    labelNames: ['link', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of src.firedCounts()) {
        const [link, type] = key.split('|');
        this.inc({ link: link!, type: type! }, n);
      }
    },
  });
  const activeFaults = new client.Gauge({
    name: 'chaos_sidecar_active_faults',
    help: 'Faults currently configured, by link and type',
    labelNames: ['link', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) {
        const byType = new Map<string, number>();
        for (const f of l.faults.values()) byType.set(f.type, (byType.get(f.type) ?? 0) + 1);
        for (const [type, n] of byType) this.set({ link: l.name, type }, n);
      }
    },
  });
  const protocolErrors = new client.Counter({
    name: 'chaos_sidecar_protocol_errors_total',
    help: 'Peers that broke the protocol a fault parses (bad PostgreSQL startup length, bad RESP length, an untamperable Nostr frame), by link and fault type',
    labelNames: ['link', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) for (const [type, n] of l.protocolErrors) this.inc({ link: l.name, type }, n);
    },
  });
  const linkErrors = new client.Counter({
    name: 'chaos_sidecar_link_errors_total',
    help: 'Exceptions while handling a connection, caught and answered by closing that connection, by link',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      for (const l of src.links()) if (l.stats.linkErrors) this.inc({ link: l.name }, l.stats.linkErrors);
    },
  });
  const uncaught = new client.Counter({
    name: 'chaos_sidecar_uncaught_exceptions_total',
    help: 'Exceptions that escaped every local handler (logged; the process kept running)',
    registers: [registry],
  });
  const faultEvents = new client.Counter({
    name: 'chaos_sidecar_fault_changes_total',
    help: 'Faults added, removed and expired, by action',
    labelNames: ['action'],
    registers: [registry],
  });
  void [bytes, connections, intercepted, dialFailures, badHandshakes, active, fired, activeFaults, protocolErrors, linkErrors];
  return { registry, faultEvents, uncaught };
}

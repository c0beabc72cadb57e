import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LatencyWindow, RateMeter } from './latency-window.js';

/**
 * The relay's metrics: Prometheus collectors for /metrics plus the windows behind the JSON /admin/metrics.
 * One instance per relay (tests run several relays in one process, so no global registry).
 */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly publishLatency = new LatencyWindow();
  readonly acceptedRate = new RateMeter();

  readonly eventsReceived = new Counter({ name: 'relay_events_received_total', help: 'EVENT messages received', labelNames: ['source'], registers: [this.registry] });
  readonly eventsAccepted = new Counter({ name: 'relay_events_accepted_total', help: 'Events answered OK true (stored, or ephemeral delivered)', labelNames: ['source'], registers: [this.registry] });
  readonly eventsRejected = new Counter({ name: 'relay_events_rejected_total', help: 'Events answered OK false, by reason prefix', labelNames: ['reason', 'source'], registers: [this.registry] });
  readonly duplicates = new Counter({ name: 'relay_events_duplicate_total', help: 'Duplicate events (OK true "duplicate:")', registers: [this.registry] });
  readonly signatureFailures = new Counter({ name: 'relay_signature_failures_total', help: 'Events whose id or signature did not verify', labelNames: ['source'], registers: [this.registry] });
  readonly dbErrors = new Counter({ name: 'relay_db_errors_total', help: 'PostgreSQL errors, by code', labelNames: ['code'], registers: [this.registry] });
  readonly cacheErrors = new Counter({ name: 'relay_cache_errors_total', help: 'Redis errors, by operation', labelNames: ['op'], registers: [this.registry] });
  readonly connections = new Gauge({ name: 'relay_connections', help: 'Open client WebSocket connections', registers: [this.registry] });
  readonly subscriptions = new Gauge({ name: 'relay_subscriptions', help: 'Open subscriptions', registers: [this.registry] });
  readonly publishSeconds = new Histogram({
    name: 'relay_publish_to_ok_seconds',
    help: 'Time from EVENT received to OK sent',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly reqsServed = new Counter({ name: 'relay_reqs_total', help: 'REQ messages, by outcome (eose, closed)', labelNames: ['outcome'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'relay_' });
  }

  recordPublish(ms: number): void {
    this.publishLatency.record(ms);
    this.publishSeconds.observe(ms / 1000);
  }
}

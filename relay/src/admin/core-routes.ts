import type { AdminServer } from './admin-server.js';
import type { Relay } from '../app.js';
import { VERSION } from '../version.js';

/** The runbook's basic endpoints: /health, /admin/status, /admin/metrics, /admin/events/recent, /metrics. */
export function registerCoreRoutes(admin: AdminServer, relay: Relay): void {
  admin.route('GET', '/health', () => {
    const status = relay.status();
    return { status: 200, body: { status: 'ok', mode: status.mode, cache: status.cache, uptimeSeconds: status.uptimeSeconds } };
  });

  admin.route('GET', '/admin/status', () => relay.status());

  admin.route('GET', '/admin/metrics', async () => {
    await relay.refreshCounters();
    const m = relay.metrics;
    const latency = m.publishLatency.percentiles();
    return {
      eventsPerSecond: m.acceptedRate.perSecond(),
      publishToOkMs: { p50: latency.p50, p95: latency.p95, p99: latency.p99, samples: latency.count },
      connections: relay.server.connections.size,
      subscriptions: relay.subscriptions.size,
      ...relay.metricSnapshot(),
      version: VERSION,
    };
  });

  admin.route('GET', '/admin/events/recent', (req) => {
    const limit = Math.min(Math.max(Number(req.query.get('limit') ?? 50) || 50, 1), 200);
    return { events: relay.pipeline.recent.list(limit) };
  });

  admin.route('GET', '/metrics', async () => ({
    status: 200,
    text: await relay.metrics.registry.metrics(),
    contentType: relay.metrics.registry.contentType,
  }));
}

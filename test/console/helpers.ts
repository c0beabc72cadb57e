// The console against a real local cluster: the cluster from test/cluster/helpers.ts (the same code as `make up`),
// and the console server in this process on a free port, as `make console` would run it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConsoleServer } from '../../cluster/src/console/server.js';
import { directEndpoints } from '../../cluster/src/layout.js';
import { startTestCluster, type TestCluster } from '../cluster/helpers.js';

export interface TestConsole {
  cluster: TestCluster;
  server: ConsoleServer;
  url: string;
  token: string;
  reportsDir: string;
  stop(): Promise<void>;
}

export async function startTestConsole(nodes: number, o: { maxStreams?: number } = {}): Promise<TestConsole> {
  const cluster = await startTestCluster(nodes);
  // `up` waits for /health only; the tests start from a peered cluster (as cli.test.ts does).
  const layout = cluster.state.layout;
  await eventually('every relay peered', async () => {
    const flags = await Promise.all(layout.nodes.map(async (n) => {
      const res = await fetch(`${directEndpoints(layout, n).adminUrl}/admin/gossip/status`, { signal: AbortSignal.timeout(2000) });
      return ((await res.json()) as { partitioned?: unknown }).partitioned;
    }));
    return flags.every((f) => f === false);
  }, 60_000, 200);
  const token = 'test-token-0123456789abcdef';
  const reportsDir = mkdtempSync(join(tmpdir(), 'console-reports-'));
  const server = new ConsoleServer({ layout: cluster.state.layout, host: '127.0.0.1', port: 0, token, reportsDir, maxStreams: o.maxStreams, logger: pino({ level: process.env.CONSOLE_TEST_LOGS ? 'debug' : 'silent' }) });
  const port = await server.listen();
  return {
    cluster,
    server,
    url: `http://127.0.0.1:${port}`,
    token,
    reportsDir,
    stop: async () => {
      await server.close();
      await cluster.stop();
    },
  };
}

/** Polls until probe() is true; answers how long it took (ms). */
export async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number> {
  const started = Date.now();
  let last: unknown;
  while (Date.now() - started < timeoutMs) {
    try {
      if (await probe()) return Date.now() - started;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** Reads server-sent events from a fetch body until `count` events arrived or the deadline passed. */
export async function readEvents(res: Response, count: number, timeoutMs: number): Promise<Array<{ event: string; data: unknown }>> {
  const out: Array<{ event: string; data: unknown }> = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  let buffer = '';
  try {
    while (out.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0 && out.length < count) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) out.push({ event, data: JSON.parse(data) });
      }
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
  return out;
}

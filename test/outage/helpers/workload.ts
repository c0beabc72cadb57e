import pg from 'pg';
import { RawClient, signed } from '../../helpers/ws-client.js';

export interface WorkloadReport {
  acked: Set<string>;
  /** OK false answers, by message. */
  refused: Array<{ id: string; message: string }>;
  /** Publishes that got no answer (connection lost, timeout): neither acknowledged nor refused. */
  unanswered: number;
}

/**
 * Publishes signed kind-1 events continuously from a few connections and records every answer. Connection losses
 * (a relay killed on purpose) count as unanswered and the worker reconnects, so the workload outlives a relay restart.
 */
export class Workload {
  readonly report: WorkloadReport = { acked: new Set(), refused: [], unanswered: 0 };
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(private url: () => string, private readonly concurrency = 4, private readonly timeoutMs = 8000) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work());
  }

  async stop(): Promise<WorkloadReport> {
    this.running = false;
    await Promise.all(this.workers);
    return this.report;
  }

  private async work(): Promise<void> {
    let client: RawClient | null = null;
    while (this.running) {
      if (!client) {
        try {
          client = await RawClient.connect(this.url());
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // relay not listening (restarting); try again
          continue;
        }
      }
      const ev = signed({ content: `outage workload ${Math.random()}` });
      try {
        const res = await client.publish(ev, this.timeoutMs);
        if (res.ok) this.report.acked.add(ev.id);
        else this.report.refused.push({ id: ev.id, message: res.message });
      } catch {
        this.report.unanswered++;
        await client.close().catch(() => undefined);
        client = null;
      }
    }
    await client?.close();
  }
}

/** Which of these ids PostgreSQL holds, and how many rows each has (exactly-once check from outside the relay). */
export async function idsInDatabase(url: string, ids: Iterable<string>): Promise<{ found: Set<string>; multiple: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const res = await c.query<{ id: string; n: string }>('SELECT id, count(*) AS n FROM events WHERE id = ANY($1::text[]) GROUP BY id', [[...ids]]);
    return { found: new Set(res.rows.map((r) => r.id)), multiple: res.rows.filter((r) => Number(r.n) > 1).length };
  } finally {
    await c.end();
  }
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

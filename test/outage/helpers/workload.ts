import pg from 'pg';
import { generateSecretKey } from 'nostr-tools/pure';
import { RawClient, signed } from '../../helpers/ws-client.js';

export interface WorkloadReport {
  acked: Set<string>;
  /** Every event sent, answered or not. */
  attempted: Set<string>;
  /** OK false answers, by message. */
  refused: Array<{ id: string; message: string }>;
  /** Publishes that got no answer (connection lost, timeout): neither acknowledged nor refused. */
  unanswered: number;
}

/**
 * Publishes signed kind-1 events continuously from a few connections and records every answer. Connection losses
 * (a relay killed on purpose) count as unanswered and the worker reconnects, so the workload outlives a relay restart.
 */
/** Per worker: 150 publishes a second at most, under the relay's default 200/s per connection and per pubkey. */
const MIN_INTERVAL_MS = 1000 / 150;

export class Workload {
  readonly report: WorkloadReport = { acked: new Set(), attempted: new Set(), refused: [], unanswered: 0 };
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
    // Its own key, and at most one publish per MIN_INTERVAL_MS: a closed loop on a fast run otherwise passes the
    // relay's default limits (2,000 events per 10 s per connection and per pubkey) and gets `rate-limited:`.
    const key = generateSecretKey();
    let lastStart = 0;
    while (this.running) {
      const wait = lastStart + MIN_INTERVAL_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      lastStart = performance.now();
      if (!client) {
        try {
          client = await RawClient.connect(this.url());
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // relay not listening (restarting); try again
          continue;
        }
      }
      // A tag, so that a second insertion of the same event would show as a second event_tags row (see idsInDatabase).
      const ev = signed({ content: `outage workload ${Math.random()}`, tags: [['t', 'outage-workload']] }, key);
      this.report.attempted.add(ev.id);
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

/**
 * Which of these ids PostgreSQL holds, and how many were written more than once (exactly-once check from outside the
 * relay). `events.id` is UNIQUE, so a second insertion can only show in `event_tags`, which has no unique key: an
 * event replayed twice (journal replay racing a direct write) has a (name, value) pair twice. Only events with tags
 * can reveal it; the workload's all carry one.
 */
export async function idsInDatabase(url: string, ids: Iterable<string>): Promise<{ found: Set<string>; multiple: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const list = [...ids];
    const found = await c.query<{ id: string }>('SELECT id FROM events WHERE id = ANY($1::text[])', [list]);
    const twice = await c.query<{ n: string }>(
      `SELECT count(DISTINCT event_id) AS n FROM (
         SELECT event_id FROM event_tags WHERE event_id = ANY($1::text[]) GROUP BY event_id, name, value HAVING count(*) > 1
       ) d`,
      [list],
    );
    return { found: new Set(found.rows.map((r) => r.id)), multiple: Number(twice.rows[0]!.n) };
  } finally {
    await c.end();
  }
}

/** Events sent by the workload, never acknowledged, that PostgreSQL holds anyway: at most the unanswered ones may be. */
export async function storedNotAcked(url: string, report: WorkloadReport): Promise<number> {
  const notAcked = [...report.attempted].filter((id) => !report.acked.has(id));
  return (await idsInDatabase(url, notAcked)).found.size;
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

// The identical-set check at scale: N identical events written straight into both relays' databases (as after a
// restore on both sides), then two anti-entropy runs from a: the cold one (every window summarised afresh on both
// sides, records loaded window by window) and the warm one (every window settled by its cached fingerprint).
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { syncNow, type Network } from '../../test/helpers/cluster.js';
import type { RelayProcess } from '../../test/helpers/relay-process.js';

interface SyncEntry {
  lastDifferences: { need: number; have: number } | null;
  lastWindows: { total: number; identical: number } | null;
  lastRounds: number;
  lastError: string | null;
}

export interface IdenticalResult {
  events: number;
  coldMs: number;
  warmMs: number;
  cold: SyncEntry;
  warm: SyncEntry;
  rssMb: { before: number[]; peak: number[] };
}

/** Same rows on both sides: ids from md5 of the row number, created_at spread over `spreadSeconds`. */
async function insertIdentical(databaseUrl: string, n: number, spreadSeconds: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const now = Math.floor(Date.now() / 1000) - 60;
    for (let from = 1; from <= n; from += 100_000) {
      const to = Math.min(n, from + 99_999);
      await client.query(
        `INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, raw)
         SELECT md5(i::text) || md5((i + 7)::text), md5('bench'), $1::int8 - (i % $2::int8), 1, '[]'::jsonb, '', '', '{}'
           FROM generate_series($3::int8, $4::int8) i`,
        [now, spreadSeconds, from, to],
      );
    }
    await client.query('ANALYZE events');
  } finally {
    await client.end();
  }
}

function rssMb(relay: RelayProcess): number {
  const status = readFileSync(`/proc/${relay.child.pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

export async function measureIdentical(net: Network, n: number, log: (line: string) => void): Promise<IdenticalResult> {
  const relays = [net.node('a').relay, net.node('b').relay];
  log(`writing ${n} identical events into both databases...`);
  await Promise.all(relays.map((r) => insertIdentical(r.databaseUrl, n, 30 * 86_400)));
  const before = relays.map(rssMb);
  const peak = [...before];
  const sampler = setInterval(() => relays.forEach((r, i) => (peak[i] = Math.max(peak[i]!, rssMb(r)))), 50);
  try {
    let t = performance.now();
    const [cold] = (await syncNow(relays[0]!)) as unknown as SyncEntry[];
    const coldMs = performance.now() - t;
    t = performance.now();
    const [warm] = (await syncNow(relays[0]!)) as unknown as SyncEntry[];
    const warmMs = performance.now() - t;
    return { events: n, coldMs, warmMs, cold: cold!, warm: warm!, rssMb: { before, peak } };
  } finally {
    clearInterval(sampler);
  }
}

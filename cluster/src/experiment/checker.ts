/**
 * The safety check: every acknowledged event present exactly once on every node. Presence is read from each node's
 * PostgreSQL directly (bypassing relay and sidecar: the truth, not what a cache says); duplicates are looked for both
 * in the table and in what each relay serves for a REQ.
 */
import pg from 'pg';
import WebSocket from 'ws';

export interface NodeCheck {
  node: string;
  /** Acknowledged ids absent from this node's database. */
  missing: string[];
  /** Ids stored more than once, or served more than once for one REQ. */
  duplicates: string[];
  /** Events of the run the relay served for the REQ (informative). */
  served: number | null;
  error?: string;
}

export interface CheckTarget {
  name: string;
  databaseUrl: string;
  relayUrl: string;
}

export async function presentCounts(databaseUrl: string, ids: string[]): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const counts = new Map<string, number>();
    const res = await client.query<{ id: string; n: number }>('SELECT id, count(*)::int AS n FROM events WHERE id = ANY($1::text[]) GROUP BY id', [ids]);
    for (const row of res.rows) counts.set(row.id, row.n);
    return counts;
  } finally {
    await client.end();
  }
}

/** Ids of the run's events a relay serves for one REQ, with repeats kept. */
export function servedIds(relayUrl: string, tag: string, limit: number, timeoutMs = 10_000): Promise<string[]> {
  return new Promise((resolveIds, reject) => {
    const ws = new WebSocket(relayUrl);
    const ids: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`REQ on ${relayUrl} got no EOSE within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify(['REQ', 'check', { '#t': [tag], limit }])));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as unknown[];
      if (msg[0] === 'EVENT' && msg[1] === 'check') ids.push((msg[2] as { id: string }).id);
      else if ((msg[0] === 'EOSE' || msg[0] === 'CLOSED') && msg[1] === 'check') {
        clearTimeout(timer);
        ws.close();
        if (msg[0] === 'CLOSED') reject(new Error(`REQ on ${relayUrl} CLOSED: ${String(msg[2])}`));
        else resolveIds(ids);
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Missing ids per node, from the databases only (cheap: used while waiting for convergence). */
export async function missingPerNode(targets: CheckTarget[], ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  await Promise.all(targets.map(async (t) => {
    const counts = await presentCounts(t.databaseUrl, ids);
    out.set(t.name, ids.filter((id) => !counts.has(id)));
  }));
  return out;
}

export async function checkNodes(targets: CheckTarget[], ids: string[], tag: string): Promise<NodeCheck[]> {
  return Promise.all(targets.map(async (t): Promise<NodeCheck> => {
    try {
      const counts = await presentCounts(t.databaseUrl, ids);
      const missing = ids.filter((id) => !counts.has(id));
      const duplicates = ids.filter((id) => (counts.get(id) ?? 0) > 1);
      let served: number | null = null;
      try {
        const got = await servedIds(t.relayUrl, tag, Math.max(ids.length * 2, 10));
        served = got.length;
        const seen = new Set<string>();
        for (const id of got) {
          if (seen.has(id) && !duplicates.includes(id)) duplicates.push(id);
          seen.add(id);
        }
      } catch (err) {
        return { node: t.name, missing, duplicates, served, error: `REQ check failed: ${(err as Error).message}` };
      }
      return { node: t.name, missing, duplicates, served };
    } catch (err) {
      return { node: t.name, missing: [...ids], duplicates: [], served: null, error: `database check failed: ${(err as Error).message}` };
    }
  }));
}

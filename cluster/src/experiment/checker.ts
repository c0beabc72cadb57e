/**
 * The safety check after the heal, in both directions. From what the workload sent and what was acknowledged it
 * derives what every node must hold (acknowledged notes and deletions, the latest acknowledged update of each
 * replaceable/addressable stream or a newer one) and must not hold (notes an acknowledged deletion removed, a
 * stream's superseded updates, anything the workload never sent or that fails verification). Then, per node, it
 * reads the truth twice: the rows in its PostgreSQL (bypassing relay and sidecar) and what the relay serves for REQs
 * by id (each event at most once per REQ). Across nodes the stored id sets must be identical; events stored but
 * never acknowledged are allowed (an OK lost to the fault) and counted.
 */
import pg from 'pg';
import { getEventHash } from 'nostr-tools/pure';
import type { Published } from './event-mix.js';
import { ServedClient } from './served.js';
import type { Attempt } from './workload.js';

export interface CheckTarget {
  name: string;
  databaseUrl: string;
  relayUrl: string;
}

export interface NodeCheck {
  node: string;
  /** Ids stored in this node's PostgreSQL (the run's authors only). */
  stored: number;
  /** Acknowledged events that must be here and are not in the database. */
  missing: string[];
  /** Stored here but not served for a REQ by id. */
  unserved: string[];
  /** Served more than once for one REQ. */
  duplicates: string[];
  /** Notes an acknowledged deletion removed, still stored. */
  undeleted: string[];
  /** Streams holding more than one event, or an event older than the latest acknowledged update. */
  badStreams: string[];
  /** Stored events the workload never sent, or that fail id/signature verification. */
  foreign: string[];
  error?: string;
}

export interface ClusterCheck {
  nodes: NodeCheck[];
  /** Per node, stored ids another node lacks (lasting divergence). */
  divergent: Array<{ node: string; only: string[] }>;
  /** Sent, stored on some node, never acknowledged (the OK was lost to the fault): allowed, shown. */
  storedNotAcked: number;
}

interface Row {
  id: string;
  kind: number;
  created_at: string;
  raw: string;
}

async function storedRows(databaseUrl: string, pubkeys: string[]): Promise<Row[]> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const res = await client.query<Row>('SELECT id, kind, created_at::text AS created_at, raw FROM events WHERE pubkey = ANY($1::text[])', [pubkeys]);
    return res.rows;
  } finally {
    await client.end();
  }
}

/** Stored ids per node (database only): cheap, for waiting until the cluster converged. */
export async function storedIds(targets: CheckTarget[], pubkeys: string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  await Promise.all(targets.map(async (t) => out.set(t.name, new Set((await storedRows(t.databaseUrl, pubkeys)).map((r) => r.id)))));
  return out;
}

export interface Expected {
  sent: Map<string, Published>;
  /** Must be on every node: acknowledged notes and deletions, minus notes some sent deletion targets. */
  required: Set<string>;
  /** Must be on no node: notes targeted by an acknowledged deletion. */
  deleted: Set<string>;
  /** Per stream, the created_at of its latest acknowledged update. */
  streamFloor: Map<string, number>;
  acked: Set<string>;
}

export function expectedState(attempts: Attempt[]): Expected {
  const sent = new Map<string, Published>();
  const acked = new Set<string>();
  const targeted = new Set<string>();
  const deleted = new Set<string>();
  const streamFloor = new Map<string, number>();
  for (const a of attempts) {
    if (a.outcome === 'unsent') continue;
    const p = a.published;
    sent.set(p.event.id, p);
    if (p.deletes) targeted.add(p.deletes);
    if (a.outcome !== 'acked') continue;
    acked.add(p.event.id);
    if (p.deletes) deleted.add(p.deletes);
    if (p.stream) streamFloor.set(p.stream, Math.max(streamFloor.get(p.stream) ?? 0, p.event.created_at));
  }
  const required = new Set<string>();
  for (const id of acked) {
    const p = sent.get(id)!;
    if ((p.role === 'regular' && !targeted.has(id)) || p.role === 'deletion') required.add(id);
  }
  return { sent, required, deleted, streamFloor, acked };
}

/** Acknowledged-during-window events every node must serve once synced (see `required`). */
export function requiredAmong(expected: Expected, ids: Iterable<string>): string[] {
  return [...ids].filter((id) => expected.required.has(id));
}

async function checkNode(t: CheckTarget, expected: Expected, pubkeys: string[]): Promise<{ check: NodeCheck; ids: Set<string> }> {
  const check: NodeCheck = { node: t.name, stored: 0, missing: [], unserved: [], duplicates: [], undeleted: [], badStreams: [], foreign: [] };
  let rows: Row[];
  try {
    rows = await storedRows(t.databaseUrl, pubkeys);
  } catch (err) {
    check.error = `database check failed: ${(err as Error).message}`;
    check.missing = [...expected.required];
    return { check, ids: new Set() };
  }
  const ids = new Set(rows.map((r) => r.id));
  check.stored = ids.size;
  for (const id of expected.required) if (!ids.has(id)) check.missing.push(id);
  for (const id of expected.deleted) if (ids.has(id)) check.undeleted.push(id);
  const perStream = new Map<string, Row[]>();
  for (const r of rows) {
    const p = expected.sent.get(r.id);
    // What we sent, unaltered: the id hashes the stored content and the signature is the one we made. (Checking
    // the signature itself would cost ~1 ms per event on this thread; equal to ours, it is as valid as ours.)
    let valid = false;
    try {
      const stored = JSON.parse(r.raw) as Parameters<typeof getEventHash>[0] & { id: string; sig: string };
      valid = !!p && stored.id === r.id && getEventHash(stored) === r.id && stored.sig === p.event.sig;
    } catch {
      valid = false;
    }
    if (!p || !valid) {
      check.foreign.push(r.id);
      continue;
    }
    if (p.stream) perStream.set(p.stream, [...(perStream.get(p.stream) ?? []), r]);
  }
  for (const [stream, held] of perStream) {
    const floor = expected.streamFloor.get(stream) ?? 0;
    if (held.length > 1) check.badStreams.push(`${stream}: ${held.length} events held (one expected)`);
    else if (Number(held[0]!.created_at) < floor) check.badStreams.push(`${stream}: holds created_at ${held[0]!.created_at}, an acknowledged update has ${floor}`);
  }
  for (const [stream, floor] of expected.streamFloor) {
    if (!perStream.has(stream)) check.badStreams.push(`${stream}: no event held, an acknowledged update has created_at ${floor}`);
  }
  const client = new ServedClient(t.relayUrl);
  try {
    const ask = [...new Set([...ids, ...expected.required])];
    const counts = new Map<string, number>();
    for (const e of await client.byIds(ask)) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
    for (const [id, n] of counts) if (n > 1) check.duplicates.push(id);
    for (const id of ids) if (!counts.has(id)) check.unserved.push(id);
  } catch (err) {
    check.error = `REQ check failed: ${(err as Error).message}`;
  } finally {
    client.close();
  }
  return { check, ids };
}

export async function checkCluster(targets: CheckTarget[], expected: Expected, pubkeys: string[]): Promise<ClusterCheck> {
  const results = await Promise.all(targets.map((t) => checkNode(t, expected, pubkeys)));
  const union = new Set<string>();
  for (const r of results) for (const id of r.ids) union.add(id);
  const divergent = results
    .filter((r) => !r.check.error)
    .map((r) => ({ node: r.check.node, only: [...r.ids].filter((id) => results.some((o) => o !== r && !o.check.error && !o.ids.has(id))) }))
    .filter((d) => d.only.length > 0);
  let storedNotAcked = 0;
  for (const id of union) if (expected.sent.has(id) && !expected.acked.has(id)) storedNotAcked++;
  return { nodes: results.map((r) => r.check), divergent, storedNotAcked };
}

/** Converged: every node's stored set identical and holding everything required. */
export function converged(sets: Map<string, Set<string>>, expected: Expected): boolean {
  const all = [...sets.values()];
  for (const s of all) for (const id of expected.required) if (!s.has(id)) return false;
  const first = all[0];
  return !!first && all.every((s) => s.size === first.size && [...s].every((id) => first.has(id)));
}

// Two honest relays for one attack row: A dials B (a configured peer), B allow-lists A's node id, and both
// allow-list the Byzantine node ids (a compromised peer is on the allow-list; a random key is only a client).
// Observations come from outside: admin API (bans, mode, peers) and /proc (RSS).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { startRelayChild, type RelayChild } from '../lib/relay-child.js';

export interface HonestPair {
  a: RelayChild;
  b: RelayChild;
  aId: string;
  bId: string;
  cleanup(): Promise<void>;
}

function keyDir(): { dataDir: string; nodeId: string } {
  const secret = generateSecretKey();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-relay-'));
  writeFileSync(join(dataDir, 'node.key'), Buffer.from(secret).toString('hex') + '\n', { mode: 0o600 });
  return { dataDir, nodeId: getPublicKey(secret) };
}

// Heartbeats as in `make up` (1 s, 5 s timeout; the runbook's default timeout is 30 s).
const PEERING = ['--public-url', 'ws://127.0.0.1:{port}', '--heartbeat-interval-ms', '1000', '--heartbeat-timeout-ms', '5000', '--reconnect-min-ms', '200', '--reconnect-max-ms', '1000'];

/** `relayArgs` go to both relays, `aArgs` to A only. */
export async function startPair(byzantineIds: string[], aArgs: string[] = [], aExtraPeers: string[] = [], relayArgs: string[] = []): Promise<HonestPair> {
  const aKey = keyDir();
  const bKey = keyDir();
  const b = await startRelayChild(['--peer-node-ids', [aKey.nodeId, ...byzantineIds].join(','), ...PEERING, ...relayArgs, '--log-level', 'warn'], { dataDir: bKey.dataDir });
  let a: RelayChild;
  try {
    a = await startRelayChild(['--peers', [b.url, ...aExtraPeers].join(','), ...(byzantineIds.length ? ['--peer-node-ids', byzantineIds.join(',')] : []), ...PEERING, ...relayArgs, ...aArgs, '--log-level', 'warn'], { dataDir: aKey.dataDir });
  } catch (err) {
    await b.cleanup();
    throw err;
  }
  const pair = { a, b, aId: aKey.nodeId, bId: bKey.nodeId, cleanup: async () => void (await Promise.all([a.cleanup(), b.cleanup()])) };
  const deadline = Date.now() + 30_000;
  while (!(await linked(pair))) {
    if (Date.now() > deadline) {
      await pair.cleanup();
      throw new Error(`A and B did not link within 30 s: ${a.tail().slice(-1500)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return pair;
}

export async function admin<T>(relay: RelayChild, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${relay.adminPort}${path}`);
  return (await res.json()) as T;
}

/** A's link to B is up with B's proven node id, and B lists A as an inbound peer. */
export async function linked(pair: HonestPair): Promise<boolean> {
  try {
    const [pa, pb] = await Promise.all([
      admin<{ peers: Array<{ nodeId: string | null; state: string }> }>(pair.a, '/admin/peers'),
      admin<{ inbound: Array<{ nodeId: string }> }>(pair.b, '/admin/peers'),
    ]);
    return pa.peers.some((p) => p.state === 'up' && p.nodeId === pair.bId) && pb.inbound.some((p) => p.nodeId === pair.aId);
  } catch {
    return false;
  }
}

export async function bansOf(relay: RelayChild): Promise<string[]> {
  return (await admin<{ bans: Array<{ subject: string }> }>(relay, '/admin/bans')).bans.map((b) => b.subject);
}

export async function modeOf(relay: RelayChild): Promise<string> {
  return (await admin<{ mode: string }>(relay, '/admin/status')).mode;
}

export function rssMb(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
    return Number(line.split(/\s+/)[1]) / 1024;
  } catch {
    return NaN; // the process is gone: the row says so
  }
}

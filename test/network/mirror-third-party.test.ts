// The mirror loop with a relay that lacks NIP-77 (a minimal third-party-style NIP-01 relay from the helpers): our
// relay's NEG-OPEN is refused (NOTICE) or never answered, it falls back to paged REQ catch-up from a cursor kept in
// PostgreSQL, and events published on either side while the other was down or partitioned away arrive; the live
// tail carries on in between.
import t from 'tap';
import pg from 'pg';
import { RawClient, signed } from '../helpers/ws-client.js';
import { peersOf, startSidecar, waitFor, type SidecarProcess } from '../helpers/cluster.js';
import { startPlainRelay, type PlainRelay } from '../helpers/plain-relay.js';
import { freePort, nodeKeyDataDir, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { rmSync } from 'node:fs';

interface SyncEntry {
  peer: string;
  method: string | null;
  fallbackReason: string | null;
  fallbackDetail: string | null;
  runs: number;
  inProgress: boolean;
  lastError: string | null;
  cursor: { pulledUntil: number | null; pushedUntil: number | null } | null;
  lastCatchup: { pulledPages: number; pushedPages: number; received: number; stored: number; offered: number; pushed: number } | null;
}

const syncStatus = async (relay: RelayProcess) => (await relay.admin<{ peers: SyncEntry[] }>('/admin/gossip/sync-status')).body.peers;

async function publish(url: string, events: Array<ReturnType<typeof signed>>): Promise<void> {
  const c = await RawClient.connect(url);
  try {
    for (const e of events) {
      const r = await c.publish({ ...e });
      if (!r.ok) throw new Error(`publish refused: ${r.message}`);
    }
  } finally {
    await c.close();
  }
}

async function countOn(url: string, ids: string[]): Promise<number> {
  const c = await RawClient.connect(url);
  try {
    return (await c.query('q', { ids, limit: ids.length })).events.length;
  } finally {
    await c.close();
  }
}

const now = () => Math.floor(Date.now() / 1000);
const batch = (n: number, label: string, createdAt?: (i: number) => number) =>
  Array.from({ length: n }, (_, i) => signed({ content: `${label} ${i}`, created_at: createdAt?.(i) }));

/** Fast heartbeats and reconnects; no periodic sync (only link-up runs), so every catch-up below is caused by the event under test. */
function ourArgs(peerUrl: string, extra: string[] = []): string[] {
  return [
    '--peers', peerUrl,
    '--heartbeat-interval-ms', '500', '--heartbeat-timeout-ms', '2500', '--reconnect-min-ms', '200', '--reconnect-max-ms', '1000',
    '--sync-interval-ms', '0',
    // No queue: what reaches the third-party relay after it was away can only come from the catch-up push.
    '--peer-queue-size', '0',
    // Small pages, so a gap of a few dozen events takes several `until` pages.
    '--req-catchup-page-size', '10',
    ...extra,
  ];
}

t.test('a relay that answers NEG-OPEN with NOTICE: downtime of ours, partition, both directions', async (t) => {
  const plain = await startPlainRelay({ neg: 'notice' });
  // Our relay dials the third-party relay through a chaos sidecar, so a partition is a sidecar fault.
  const sidecar: SidecarProcess = await startSidecar('mirror', [{ name: 'peer-plain', upstream: `127.0.0.1:${plain.port}`, protocol: 'ws' }]);
  const viaSidecar = `ws://127.0.0.1:${sidecar.links[0]!.listenPort}`;
  const { dataDir } = await nodeKeyDataDir();
  const port = await freePort();
  const adminPort = await freePort();
  let relay: RelayProcess | undefined;
  let first: RelayProcess | undefined;
  t.teardown(async () => {
    await relay?.stop();
    await first?.stop();
    await first?.cleanup();
    await sidecar.stop();
    await plain.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // History the third-party relay had before we ever met it: fetched on first contact.
  const old = batch(25, 'old', (i) => now() - 3600 - i);
  await publish(plain.url, old);
  first = await startRelay({ dataDir, port, adminPort, args: ourArgs(viaSidecar) });
  relay = first;

  await t.test('falls back to REQ catch-up with the reason in sync-status, and mirrors the history', async (t) => {
    const st = await waitFor('a finished run with the fallback', async () => {
      const s = (await syncStatus(relay!))[0];
      return s && s.runs > 0 && !s.inProgress ? s : null;
    }, 30_000);
    t.equal(st.method, 'req-fallback');
    t.equal(st.fallbackReason, 'refused');
    t.match(st.fallbackDetail, /NOTICE/);
    t.equal(st.lastError, null);
    t.equal(st.lastCatchup?.stored, 25, 'the 25 old events were fetched');
    t.ok((st.lastCatchup?.pulledPages ?? 0) >= 3, 'over several pages');
    t.equal(st.cursor?.pulledUntil, Math.max(...old.map((e) => e.created_at)), 'pull cursor at the newest event seen');
    t.equal(await countOn(relay!.url, old.map((e) => e.id)), 25);
    const partition = relay!.logs.find((l) => /partition detected/.test(String(l.msg)));
    t.notOk(partition, 'no partition is flagged at start against a relay without NIP-77 or a node id');
  });

  await t.test('the live tail works both ways', async (t) => {
    const theirs = signed({ content: 'live on plain' });
    await publish(plain.url, [theirs]);
    await waitFor('live event on ours', async () => (await countOn(relay!.url, [theirs.id])) === 1, 10_000);
    const ours = signed({ content: 'live on ours' });
    await publish(relay!.url, [ours]);
    await waitFor('live event on plain', () => plain.has(ours.id), 10_000);
    t.pass('both arrived');
  });

  await t.test('events published on the third-party relay while ours was down arrive after it restarts', async (t) => {
    await relay!.stop();
    const missed = batch(30, 'while down');
    await publish(plain.url, missed);
    relay = await startRelay({ databaseUrl: first!.databaseUrl, redisUrl: first!.redisUrl, redisKeyPrefix: first!.redisKeyPrefix, dataDir, port, adminPort, args: ourArgs(viaSidecar) });
    await waitFor('the 30 missed events on ours', async () => (await countOn(relay!.url, missed.map((e) => e.id))) === 30, 60_000);
    const st = await waitFor('the catch-up run', async () => {
      const s = (await syncStatus(relay!))[0];
      return s && s.runs > 0 && !s.inProgress ? s : null;
    }, 30_000);
    t.equal(st.method, 'req-fallback');
    t.equal(st.lastCatchup?.stored, 30, 'the catch-up stored exactly the missed events');
    // The persisted cursor bounded the walk: the hour-old history was not read again (25 old + 30 new + 1 live).
    t.ok(st.lastCatchup!.received < 25 + 30, `only the recent gap was read (${st.lastCatchup!.received} events)`);
    const db = new pg.Client({ connectionString: relay!.databaseUrl });
    await db.connect();
    const row = (await db.query<{ pulled_until: string }>('SELECT pulled_until FROM peer_sync_cursors')).rows[0];
    await db.end();
    t.ok(row && Number(row.pulled_until) >= Math.max(...missed.map((e) => e.created_at)) - 1, 'the cursor is in PostgreSQL');
    t.notOk(relay!.logs.find((l) => /partition detected/.test(String(l.msg))), 'no partition flagged at restart');
  });

  await t.test('after a partition, events published on either side reach the other', async (t) => {
    await waitFor('link up', async () => (await peersOf(relay!))[0]?.state === 'up', 15_000);
    await sidecar.partition('peer-plain');
    await waitFor('link down', async () => (await peersOf(relay!))[0]?.state === 'down', 15_000);
    const runsBefore = (await syncStatus(relay!))[0]!.runs;
    const onPlain = batch(12, 'partition plain');
    const onOurs = batch(7, 'partition ours');
    await publish(plain.url, onPlain);
    await publish(relay!.url, onOurs);
    await sidecar.heal('peer-plain');
    await waitFor('plain events on ours', async () => (await countOn(relay!.url, onPlain.map((e) => e.id))) === 12, 60_000);
    await waitFor('our events on plain', () => onOurs.every((e) => plain.has(e.id)), 60_000);
    const st = await waitFor('the run after heal', async () => {
      const s = (await syncStatus(relay!))[0];
      return s && s.runs > runsBefore && !s.inProgress ? s : null;
    }, 30_000);
    t.equal(st.lastCatchup?.stored, 12, 'pulled the 12');
    t.equal(st.lastCatchup?.pushed, 7, 'pushed the 7 (no queue: only the catch-up could)');
    t.ok(st.cursor?.pushedUntil, 'push cursor set');
  });

  await t.test('events published on ours while the third-party relay was unreachable reach it', async (t) => {
    const runsBefore = (await syncStatus(relay!))[0]!.runs;
    await plain.stop();
    await waitFor('link down', async () => (await peersOf(relay!))[0]?.state === 'down', 15_000);
    const ours = batch(15, 'while plain away');
    await publish(relay!.url, ours);
    await plain.start();
    await waitFor('our 15 on plain', () => ours.every((e) => plain.has(e.id)), 60_000);
    const st = await waitFor('the run after it returned', async () => {
      const s = (await syncStatus(relay!))[0];
      return s && s.runs > runsBefore && !s.inProgress ? s : null;
    }, 30_000);
    t.equal(st.lastCatchup?.pushed, 15);
  });
});

t.test('a relay that never answers NEG-OPEN: the fallback comes after the open timeout, not never', async (t) => {
  const plain = await startPlainRelay({ neg: 'ignore' });
  const history = batch(8, 'silent history', (i) => now() - 600 - i);
  await publish(plain.url, history);
  const relay = await startRelay({ args: ourArgs(plain.url, ['--negentropy-open-timeout-ms', '1500']) });
  t.teardown(async () => {
    await relay.stop();
    await relay.cleanup();
    await plain.stop();
  });
  const st = await waitFor('a finished run with the fallback', async () => {
    const s = (await syncStatus(relay))[0];
    return s && s.runs > 0 && !s.inProgress ? s : null;
  }, 30_000);
  t.equal(st.method, 'req-fallback');
  t.equal(st.fallbackReason, 'timeout');
  t.match(st.fallbackDetail, /1500 ms/);
  t.equal(st.lastError, null);
  t.equal(st.lastCatchup?.stored, 8);
  t.equal(await countOn(relay.url, history.map((e) => e.id)), 8);
  t.equal(plain.received.get('NEG-OPEN'), 1, 'NEG-OPEN was tried once');
  const ours = batch(3, 'ours to silent');
  await publish(relay.url, ours);
  await waitFor('ours on plain', () => ours.every((e) => plain.has(e.id)), 10_000);
  t.notOk(relay.logs.find((l) => /partition detected/.test(String(l.msg))), 'no partition flagged');
});

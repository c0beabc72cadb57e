// Anti-entropy over sets larger than one NIP-77 session may hold: two real relays (peer links through sidecars)
// with a small configured bound (sync_window_records 100, negentropy_max_records 300) reconcile 1,150-event sets
// window by window and find exactly the differences planted in them; an unchanged window is then settled by
// its cached fingerprint alone; changes made behind a relay's back (psql) still reach the cache through the
// trigger-written change log; a window the peer holds more of than its cap is split until it fits.
import t from 'tap';
import { generateSecretKey } from 'nostr-tools/pure';
import { peersOf, startNetwork, storedIds, syncNow, waitFor, type Network } from '../helpers/cluster.js';
import { insertDirectly, sqlOn } from '../helpers/direct-insert.js';
import { fastSign, type SignedEvent } from '../helpers/malicious-node.js';
import type { RelayProcess } from '../helpers/relay-process.js';

const WINDOW = 100;
const CAP = 300;

let net: Network;
t.before(async () => {
  // Periodic sync off: every run below is started by the test, so each run's counts are its own.
  net = await startNetwork({ names: ['a', 'b'], syncIntervalMs: 0, args: ['--sync-window-records', String(WINDOW), '--negentropy-max-records', String(CAP)] });
  await waitFor('both links up', async () => (await peersOf(net.node('a').relay))[0]?.state === 'up' && (await peersOf(net.node('b').relay))[0]?.state === 'up', 60_000);
});
t.teardown(async () => {
  await net?.stop();
});

const a = () => net.node('a').relay;
const b = () => net.node('b').relay;

interface SyncEntry {
  lastDifferences: { need: number; have: number } | null;
  lastWindows: { total: number; identical: number } | null;
  lastError: string | null;
  lastFetched: number;
  lastPushed: number;
  lastRounds: number;
}

const keys = Array.from({ length: 20 }, () => generateSecretKey());
let serial = 0;
/** `n` events spread over `spread` seconds starting `ago` seconds in the past. */
function events(n: number, ago: number, spread: number): SignedEvent[] {
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: n }, (_, i) => fastSign({ kind: 1, created_at: now - ago + (i % spread), tags: [], content: `window ${serial++}` }, keys[i % keys.length]!));
}

async function syncA(): Promise<SyncEntry> {
  const [entry] = (await syncNow(a())) as unknown as SyncEntry[];
  return entry!;
}

async function cachedMatches(relay: RelayProcess): Promise<number> {
  const text = (await relay.admin<string>('/metrics')).body;
  const m = /^relay_sync_cached_window_matches_total (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const common = events(900, 20_000, 4000);
const onlyA = events(250, 20_000, 4000);
const onlyB = events(250, 20_000, 4000);

t.test('sets 4x the session cap reconcile window by window and find exactly the planted differences', async (t) => {
  await insertDirectly(a().databaseUrl, [...common, ...onlyA]);
  await insertDirectly(b().databaseUrl, [...common, ...onlyB]);
  const r = await syncA();
  t.equal(r.lastError, null, 'no error (one session over the whole set would be refused: 1,150 > 300)');
  t.same(r.lastDifferences, { need: onlyB.length, have: onlyA.length }, 'exactly the planted differences, both ways');
  t.equal(r.lastFetched, onlyB.length, "every event only b had is fetched and stored on a");
  t.equal(r.lastPushed, onlyA.length, 'every event only a had is pushed to b');
  t.ok(r.lastWindows && r.lastWindows.total >= Math.ceil((common.length + onlyA.length) / WINDOW), `at least ${Math.ceil(1150 / WINDOW)} windows (got ${r.lastWindows?.total})`);
  const [ia, ib] = [await storedIds(a()), await storedIds(b())];
  t.equal(ia.ids.length, common.length + onlyA.length + onlyB.length, 'a holds the union');
  t.same(ia.ids, ib.ids, 'identical sets');
});

t.test('unchanged windows are settled by their cached fingerprints, one round trip each', async (t) => {
  // The first run's fetches and pushes changed windows on both sides: the next run summarises them afresh.
  const settled = await syncA();
  t.same(settled.lastDifferences, { need: 0, have: 0 }, 'nothing left to move');
  const before = await cachedMatches(b());
  const r = await syncA();
  t.same(r.lastDifferences, { need: 0, have: 0 });
  t.ok(r.lastWindows && r.lastWindows.total > 1, 'several windows');
  t.equal(r.lastWindows?.identical, r.lastWindows?.total, 'every window matched by its fingerprint in one round trip');
  t.equal(r.lastRounds, r.lastWindows?.total, 'one round trip per window');
  t.equal((await cachedMatches(b())) - before, r.lastWindows?.total, "b answered each from its cache, loading no records");
});

t.test('an event deleted behind the responder’s back is found again (the change log invalidates its cached window)', async (t) => {
  const victim = common[437]!;
  const del = await sqlOn(b().databaseUrl, 'DELETE FROM events WHERE id = $1', [victim.id]);
  t.equal(del.rowCount, 1, 'deleted from b with psql, not through the relay');
  const r = await syncA();
  t.same(r.lastDifferences, { need: 0, have: 1 }, 'a finds b lacks it');
  t.equal(r.lastPushed, 1, 'and pushes it back');
  t.ok((await storedIds(b())).ids.includes(victim.id), 'b holds it again');
});

t.test('an event deleted behind the initiator’s back is found again (its own cached window is invalidated too)', async (t) => {
  const victim = onlyB[17]!;
  const del = await sqlOn(a().databaseUrl, 'DELETE FROM events WHERE id = $1', [victim.id]);
  t.equal(del.rowCount, 1);
  const r = await syncA();
  t.same(r.lastDifferences, { need: 1, have: 0 }, 'a finds it lacks it');
  t.equal(r.lastFetched, 1);
  t.ok((await storedIds(a())).ids.includes(victim.id), 'a holds it again');
});

t.test('a window the peer holds more of than its cap is split until each part fits', async (t) => {
  // 400 events in 40 seconds, only on b: a's window over them holds none, b refuses 400 > 300 in one session.
  const burst = events(400, 40_000, 40);
  await insertDirectly(b().databaseUrl, burst);
  const r = await syncA();
  t.equal(r.lastError, null, 'no error');
  t.same(r.lastDifferences, { need: burst.length, have: 0 }, 'all 400 found');
  t.equal(r.lastFetched, burst.length, 'and stored on a');
  const [ia, ib] = [await storedIds(a()), await storedIds(b())];
  t.same(ia.ids, ib.ids, 'identical sets');
});

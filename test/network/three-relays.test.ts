// Three real relays in a full mesh, each dialling its peers through its own chaos sidecar: delivery to every
// node, a partition isolating one node (and its heal), and a SIGKILLed node detected, served around, restarted.
import t from 'tap';
import { RawClient, signed } from '../helpers/ws-client.js';
import { gossipOf, nodeIdOf, peersOf, startNetwork, storedIds, syncNow, waitFor, type Network } from '../helpers/cluster.js';

const HEARTBEAT_MS = 1000;
let net: Network;
t.before(async () => {
  net = await startNetwork({ names: ['a', 'b', 'c'], heartbeatIntervalMs: HEARTBEAT_MS, heartbeatTimeoutMs: 2 * HEARTBEAT_MS });
  for (const n of ['a', 'b', 'c']) {
    await waitFor(`${n} has its peers up`, async () => (await peersOf(net.node(n).relay)).every((p) => p.state === 'up'), 20_000);
  }
});
t.teardown(async () => {
  await net?.stop();
});

const relay = (n: string) => net.node(n).relay;

async function publishTo(n: string, events: Array<ReturnType<typeof signed>>): Promise<void> {
  const c = await RawClient.connect(relay(n).url);
  try {
    for (const e of events) {
      const r = await c.publish({ ...e });
      if (!r.ok) throw new Error(`publish refused: ${r.message}`);
    }
  } finally {
    await c.close();
  }
}

async function count(n: string, ids: string[]): Promise<number> {
  const c = await RawClient.connect(relay(n).url);
  try {
    return (await c.query('q', { ids, limit: ids.length })).events.length;
  } finally {
    await c.close();
  }
}

async function allIdentical(names = ['a', 'b', 'c']): Promise<string[] | null> {
  const sets = await Promise.all(names.map((n) => storedIds(relay(n))));
  if (sets.some((s) => s.duplicates > 0)) throw new Error('duplicate rows in PostgreSQL');
  const first = JSON.stringify(sets[0]!.ids);
  return sets.every((s) => JSON.stringify(s.ids) === first) ? sets[0]!.ids : null;
}

t.test('publish on one relay, receive on the others', async (t) => {
  const subs = await Promise.all(['b', 'c'].map(async (n) => {
    const c = await RawClient.connect(relay(n).url);
    c.send(['REQ', 'live', { kinds: [1], since: Math.floor(Date.now() / 1000) - 5 }]);
    await c.next((f) => f[0] === 'EOSE');
    return c;
  }));
  const e = signed({ content: 'to everyone' });
  await publishTo('a', [e]);
  for (const s of subs) {
    await s.next((f) => f[0] === 'EVENT' && (f[2] as { id: string }).id === e.id, 5000, 'forwarded event');
    await s.close();
  }
  t.pass('b and c both received it live');
  await waitFor('identical sets', () => allIdentical(), 10_000);
  const view = await gossipOf(relay('a'));
  t.equal(view.reachable.length, 2, 'a reaches both members');
  t.notOk(view.partitioned);
});

t.test('partition {a} | {b, c}: each side keeps working; heal: identical sets, no duplicates', async (t) => {
  for (const [x, y] of [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'a']] as const) await net.cut(x, y, { existing: 'freeze' });
  await waitFor('partition flagged on every node', async () => (await Promise.all(['a', 'b', 'c'].map((n) => gossipOf(relay(n))))).every((v) => v.partitioned), 10_000);
  const idA = await nodeIdOf(relay('a'));
  const bView = await gossipOf(relay('b'));
  t.ok(bView.unreachable.some((u) => u.nodeId === idA), 'b sees a unreachable');
  t.equal(bView.reachable.length, 1, 'b still reaches c');
  const onA = Array.from({ length: 20 }, (_, i) => signed({ content: `minority ${i}` }));
  const onB = Array.from({ length: 20 }, (_, i) => signed({ content: `majority ${i}` }));
  await publishTo('a', onA);
  await publishTo('b', onB);
  await waitFor("b's events reach c", async () => (await count('c', onB.map((e) => e.id))) === onB.length, 5000);
  t.equal(await count('c', onA.map((e) => e.id)), 0, "a's events do not cross the partition");
  t.equal(await count('a', onB.map((e) => e.id)), 0, "b's events do not cross the partition");
  const healed = Date.now();
  for (const [x, y] of [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'a']] as const) await net.heal(x, y);
  const ids = await waitFor('identical id sets on a, b, c', () => allIdentical(), 30_000, 200);
  t.comment(`converged ${Date.now() - healed} ms after heal (${ids.length} events)`);
  t.ok(Date.now() - healed < 30_000, 'converged within the runbook 30 s');
  await waitFor('partition healed everywhere', async () => (await Promise.all(['a', 'b', 'c'].map((n) => gossipOf(relay(n))))).every((v) => !v.partitioned), 10_000);
  for (const n of ['a', 'b', 'c']) {
    for (const r of await syncNow(relay(n))) t.same(r.lastDifferences, { need: 0, have: 0 }, `${n}: negentropy with ${r.peer} finds zero differences`);
  }
});

t.test('SIGKILL a relay: marked down within two heartbeats; the rest keeps serving; restart: rejoins, catches up', async (t) => {
  const idC = await nodeIdOf(relay('c'));
  const killed = Date.now();
  await relay('c').kill();
  const detect = async (n: string) => {
    await waitFor(`${n} marks c down`, async () => (await peersOf(relay(n))).find((p) => p.nodeId === idC)?.state === 'down', 10_000, 25);
    return Date.now() - killed;
  };
  const [da, db] = await Promise.all([detect('a'), detect('b')]);
  t.comment(`c marked down after ${da} ms on a, ${db} ms on b (heartbeat ${HEARTBEAT_MS} ms)`);
  t.ok(da <= 2 * HEARTBEAT_MS + 250 && db <= 2 * HEARTBEAT_MS + 250, 'within two heartbeat intervals');
  const whileDown = Array.from({ length: 10 }, (_, i) => signed({ content: `while c is down ${i}` }));
  await publishTo('a', whileDown);
  await waitFor('b still gets a\'s events', async () => (await count('b', whileDown.map((e) => e.id))) === whileDown.length, 5000);
  // Waited for: gossip marks a member unreachable from its own staleness clock, which a loaded machine delays.
  t.ok(await waitFor('a flags c as unreachable', async () => (await gossipOf(relay('a'))).partitioned, 15_000), 'a flags c as unreachable');
  const restarted = Date.now();
  await net.node('c').restart();
  t.equal(await nodeIdOf(relay('c')), idC, 'same node id after restart (key kept in the data dir)');
  await waitFor('c caught up', async () => (await count('c', whileDown.map((e) => e.id))) === whileDown.length, 30_000, 200);
  t.comment(`c rejoined and caught up ${Date.now() - restarted} ms after restart`);
  await waitFor('identical id sets', () => allIdentical(), 15_000, 200);
  await waitFor('a sees c up again', async () => (await peersOf(relay('a'))).find((p) => p.nodeId === idC)?.state === 'up', 10_000);
});

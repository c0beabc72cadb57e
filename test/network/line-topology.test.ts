// A line A–B–C (no A–C link, discovery off): A's events reach C through B; cutting A–B stops them; healing
// delivers them (B reconciles with A, then forwards to C). Gossip shows C reachable from A through B.
import t from 'tap';
import { RawClient, signed } from '../helpers/ws-client.js';
import { gossipOf, nodeIdOf, peersOf, startNetwork, waitFor, type Network } from '../helpers/cluster.js';

let net: Network;
t.before(async () => {
  net = await startNetwork({ names: ['a', 'b', 'c'], edges: [['a', 'b'], ['b', 'c']], args: ['--peer-discovery', 'false'] });
  for (const n of ['a', 'b', 'c']) {
    await waitFor(`${n} has its peers up`, async () => (await peersOf(net.node(n).relay)).every((p) => p.state === 'up'), 30_000);
  }
});
t.teardown(async () => {
  await net?.stop();
});

const relay = (n: string) => net.node(n).relay;

async function publish(n: string, e: ReturnType<typeof signed>): Promise<void> {
  const c = await RawClient.connect(relay(n).url);
  const r = await c.publish({ ...e });
  await c.close();
  if (!r.ok) throw new Error(`publish refused: ${r.message}`);
}

async function has(n: string, id: string): Promise<boolean> {
  const c = await RawClient.connect(relay(n).url);
  try {
    return (await c.query('q', { ids: [id] })).events.length === 1;
  } finally {
    await c.close();
  }
}

t.test('a has no link to c, yet reaches it through b', async (t) => {
  t.equal((await peersOf(relay('a'))).length, 1, 'a has one peer link');
  const idC = await nodeIdOf(relay('c'));
  await waitFor('c reachable from a through b', async () => (await gossipOf(relay('a'))).reachable.includes(idC), 10_000);
  t.notOk((await gossipOf(relay('a'))).partitioned);
  const e = signed({ content: 'a to c via b' });
  await publish('a', e);
  await waitFor('event on c', () => has('c', e.id), 5000);
  const recent = (await relay('c').admin<{ events: Array<{ id: string; from: string }> }>('/admin/events/recent')).body.events;
  t.equal(recent.find((r) => r.id === e.id)?.from, await nodeIdOf(relay('b')), 'c got it from b');
});

t.test('cut a–b: a\'s events stop; heal: they arrive at c', async (t) => {
  await net.cut('a', 'b');
  await net.cut('b', 'a');
  await waitFor('a partitioned', async () => (await gossipOf(relay('a'))).partitioned, 10_000);
  const idA = await nodeIdOf(relay('a'));
  await waitFor('c sees a unreachable', async () => (await gossipOf(relay('c'))).unreachable.some((u) => u.nodeId === idA), 10_000);
  const e = signed({ content: 'a during the cut' });
  await publish('a', e);
  await new Promise((r) => setTimeout(r, 1000));
  t.notOk(await has('b', e.id), 'b does not get it');
  t.notOk(await has('c', e.id), 'c does not get it');
  await net.heal('a', 'b');
  await net.heal('b', 'a');
  await waitFor('event reaches c after heal', () => has('c', e.id), 20_000, 200);
  t.pass('delivered through b after heal');
  await waitFor('partition healed on a', async () => !(await gossipOf(relay('a'))).partitioned, 10_000);
});

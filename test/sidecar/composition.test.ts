/**
 * Several faults on one link compose in the documented order (docs/SIDECAR.md, "Composition"): per direction, in
 * the order they were added, each stage acting on what the one before it emitted - so delays add up.
 */
import t from 'tap';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { call, connect, echoServer, portOf, quantile, roundTrip, sidecar, sleep, wsEchoServer, addToxic, linkPort } from './helpers.js';

const echo = await echoServer();
const relay = await wsEchoServer();
const sc = await sidecar({
  links: [
    { name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true },
    { name: 'peer', listen: '127.0.0.1:0', upstream: `127.0.0.1:${relay.port}`, protocol: 'ws', enabled: true },
  ],
});
t.teardown(async () => {
  await sc.close();
  await echo.close();
  await relay.close();
});
const port = (name: string) => linkPort(sc, name);
const add = (link: string, toxic: object) => addToxic(sc, link, toxic);
t.afterEach(async () => {
  await call(sc.apiUrl, 'POST', '/reset');
});

async function p50(s: import('node:net').Socket, n = 5): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await roundTrip(s, Buffer.from('x')));
  return quantile(xs, 0.5);
}

t.test('two 50 ms delays in one direction give 100 ms', async (t) => {
  await add('echo', { name: 'd1', type: 'latency', stream: 'downstream', attributes: { latency: 50 } });
  await add('echo', { name: 'd2', type: 'latency', stream: 'downstream', attributes: { latency: 50 } });
  const s = await connect(port('echo'));
  const ms = await p50(s);
  t.ok(ms >= 100 && ms < 1000, `round trip p50 ${ms.toFixed(1)} ms`);
  s.destroy();
});

t.test('one delay per direction adds up over the round trip', async (t) => {
  await add('echo', { name: 'up', type: 'latency', stream: 'upstream', attributes: { latency: 50 } });
  await add('echo', { name: 'down', type: 'latency', stream: 'downstream', attributes: { latency: 50 } });
  const s = await connect(port('echo'));
  const ms = await p50(s);
  t.ok(ms >= 100 && ms < 1000, `round trip p50 ${ms.toFixed(1)} ms`);
  s.destroy();
});

t.test('stages act in the order they were added: duplicate before limit_data is not limit_data before duplicate', async (t) => {
  const run = async (first: object, second: object) => {
    await add('peer', first);
    await add('peer', second);
    const ws = new WebSocket(`ws://127.0.0.1:${port('peer')}/`);
    await once(ws, 'open');
    const before = relay.received.length;
    for (const m of ['aaaaaaaaaa', 'bbbbbbbbbb', 'cccccccccc']) ws.send(m);
    await once(ws, 'close');
    await sleep(100);
    await call(sc.apiUrl, 'POST', '/reset');
    return relay.received.slice(before);
  };
  const dup = { name: 'dup', type: 'duplicate', stream: 'upstream', attributes: { copies: 1 } };
  const cap = { name: 'cap', type: 'limit_data', stream: 'upstream', attributes: { bytes: 25 } };
  t.same(await run(dup, cap), ['aaaaaaaaaa', 'aaaaaaaaaa'], 'duplicate first: 6 copies, the limit passes 2');
  t.same(await run(cap, dup), ['aaaaaaaaaa', 'aaaaaaaaaa', 'bbbbbbbbbb', 'bbbbbbbbbb'], 'limit_data first: 2 pass, each duplicated');
});

t.test('removing one of two delays leaves the other; held data goes on to the next stage', async (t) => {
  await add('echo', { name: 'd1', type: 'latency', stream: 'downstream', attributes: { latency: 4000 } });
  await add('echo', { name: 'd2', type: 'latency', stream: 'downstream', attributes: { latency: 100 } });
  const s = await connect(port('echo'));
  const pending = roundTrip(s, Buffer.from('held'), 10_000);
  await sleep(50);
  await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/d1');
  const ms = await pending;
  // Held to the end by d1 it would take >= 4.1 s: 2 s leaves a busy machine room and still tells the two apart.
  t.ok(ms >= 150 && ms < 2000, `released from d1 at its removal, then delayed 100 ms by d2: ${ms.toFixed(0)} ms`);
  s.destroy();
});

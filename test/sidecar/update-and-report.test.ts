/**
 * Faults do exactly what they say: an update keeps a fault's state, place and timers (as Toxiproxy's does), and a
 * profile reports as placed only what was installed, failing as a whole when an entry cannot be.
 */
import t from 'tap';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { call, connect, echoServer, outcome, portOf, roundTrip, sidecar, sleep, wsEchoServer, addToxic, linkPort } from './helpers.js';

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
const patch = async (link: string, name: string, body: object) => {
  const r = await call(sc.apiUrl, 'PATCH', `/proxies/${link}/toxics/${name}`, body);
  if (r.status !== 200) throw new Error(r.text);
  return r.body;
};
t.afterEach(async () => {
  await call(sc.apiUrl, 'POST', '/reset');
});

t.test('limit_data: an update keeps the count of bytes already passed', async (t) => {
  await add('echo', { name: 'cap', type: 'limit_data', stream: 'downstream', attributes: { bytes: 1000 } });
  const s = await connect(port('echo'));
  await roundTrip(s, Buffer.alloc(600, 1));
  await patch('echo', 'cap', { attributes: { bytes: 1100 } });
  s.write(Buffer.alloc(600, 2));
  const o = await outcome(s, 2000);
  t.equal(o.data.length, 500, '600 + 500 = the new limit of 1100; the count did not restart');
  t.not(o.how, 'open', 'then closed');
});

t.test('an update keeps the fault\'s place in the pipeline', async (t) => {
  // duplicate then limit_data: 3 messages of 10 bytes become 6, the limit (25) passes 2. The other way round 4 pass.
  await add('peer', { name: 'dup', type: 'duplicate', stream: 'upstream', attributes: { copies: 1 } });
  await add('peer', { name: 'cap', type: 'limit_data', stream: 'upstream', attributes: { bytes: 25 } });
  const ws = new WebSocket(`ws://127.0.0.1:${port('peer')}/`);
  await once(ws, 'open');
  await patch('peer', 'dup', { attributes: { probability: 1 } });
  const before = relay.received.length;
  for (const m of ['aaaaaaaaaa', 'bbbbbbbbbb', 'cccccccccc']) ws.send(m);
  await once(ws, 'close');
  await sleep(100);
  t.same(relay.received.slice(before), ['aaaaaaaaaa', 'aaaaaaaaaa'], 'duplicate still acts before limit_data');
});

t.test('an update keeps timers: the timeout and the fault duration run from when they started', async (t) => {
  await add('echo', { name: 'to', type: 'timeout', stream: 'upstream', attributes: { timeout: 1000 } });
  const s = await connect(port('echo'));
  const t0 = Date.now();
  await sleep(500);
  await patch('echo', 'to', { toxicity: 1 });
  await outcome(s, 3000);
  const closedAfter = Date.now() - t0;
  t.ok(closedAfter < 1400, `closed ${closedAfter} ms after the connection met the fault (1000, not restarted at the update)`);
  await call(sc.apiUrl, 'POST', '/reset');

  await add('echo', { name: 'brief', type: 'latency', attributes: { latency: 1 }, duration: 1500 });
  const added = Date.now();
  await sleep(700);
  await patch('echo', 'brief', { attributes: { latency: 2 } });
  const f = (await call(sc.apiUrl, 'GET', '/faults')).body.faults.find((x: { name: string }) => x.name === 'brief');
  t.ok(f.remaining_ms <= 1500 - 600, `remaining ${f.remaining_ms} ms: the duration kept running`);
  await sleep(Math.max(0, added + 1700 - Date.now()));
  t.equal((await call(sc.apiUrl, 'GET', '/proxies/echo/toxics')).body.length, 0, 'expired on time');
});

t.test('toxicity updates add and remove the fault on open connections, by their fixed roll', async (t) => {
  await add('echo', { name: 'slow', type: 'latency', toxicity: 0, attributes: { latency: 150 } });
  const s = await connect(port('echo'));
  t.ok((await roundTrip(s, Buffer.from('a'))) < 140, 'toxicity 0: fast');
  await patch('echo', 'slow', { toxicity: 1 });
  t.ok((await roundTrip(s, Buffer.from('b'))) >= 149, 'toxicity 1: the open connection is slowed');
  await patch('echo', 'slow', { toxicity: 0 });
  t.ok((await roundTrip(s, Buffer.from('c'))) < 140, 'toxicity 0 again: fast');
  s.destroy();
});

t.test('a profile reports placed only what was installed; an entry that cannot be fails the whole apply', async (t) => {
  const good = await call(sc.apiUrl, 'POST', '/profiles', 'name: good\nfaults:\n  - link: echo\n    action: delay\n    delay: {latency: 5ms}\n', { 'content-type': 'application/yaml' });
  t.equal(good.status, 200);
  t.same(good.body.targets, [{ fault: 'good.0', links: ['echo'] }]);
  // duplicate is ws-only: on the tcp link it cannot be installed.
  const bad = await call(sc.apiUrl, 'POST', '/profiles',
    'name: bad\nfaults:\n  - link: peer\n    action: delay\n    delay: {latency: 5ms}\n  - link: echo\n    type: duplicate\n', { 'content-type': 'application/yaml' });
  t.equal(bad.status, 400, `refused: ${bad.body?.error}`);
  t.match(bad.body?.error ?? '', /bad\.1 on echo: .*does not work on tcp links/);
  t.notOk(sc.sidecar.links.get('peer')!.faults.has('bad.0'), 'nothing of it was installed');
  t.equal((await call(sc.apiUrl, 'GET', '/profiles')).body.active?.name, 'good', 'the active profile is untouched');

  const small = await sidecar({ maxActiveFaults: 1, links: [{ name: 'x', listen: '127.0.0.1:0', upstream: '127.0.0.1:1', protocol: 'tcp', enabled: true }] });
  t.teardown(() => small.close());
  const over = await call(small.apiUrl, 'POST', '/profiles',
    'name: two\nfaults:\n  - link: x\n    action: delay\n    delay: {latency: 5ms}\n  - link: x\n    type: timeout\n', { 'content-type': 'application/yaml' });
  t.equal(over.status, 409, `over the fault budget: ${over.body?.error}`);
  t.equal(small.sidecar.activeFaultCount(), 0, 'and nothing stays installed');
});

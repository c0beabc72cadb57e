/**
 * WebSocket pings and pongs travel through the fault chain like messages: the sidecar never answers a ping itself,
 * so a frozen partition stops them (a relay's keep-alive notices the cut) and latency delays them.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { WebSocket, WebSocketServer } from 'ws';
import { call, portOf, sidecar, sleep } from './helpers.js';

const server = http.createServer();
const wss = new WebSocketServer({ server });
const pingsAtServer: string[] = [];
const pongsAtServer: string[] = [];
let serverSide: WebSocket | null = null;
wss.on('connection', (ws) => {
  serverSide = ws;
  ws.on('ping', (d) => pingsAtServer.push(d.toString()));
  ws.on('pong', (d) => pongsAtServer.push(d.toString()));
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const sc = await sidecar({
  links: [{ name: 'peer', listen: '127.0.0.1:0', upstream: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, protocol: 'ws', enabled: true }],
});
t.teardown(async () => {
  await sc.close();
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => server.close(r));
});
const url = () => `ws://127.0.0.1:${portOf(sc.sidecar.links.get('peer')!.spec().listen)}/`;

/** Ping with a payload; resolves with the ms until its pong, or null when none came within waitMs. */
function pingPong(ws: WebSocket, payload: string, waitMs: number): Promise<number | null> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.off('pong', on);
      resolve(null);
    }, waitMs);
    const on = (d: Buffer) => {
      if (d.toString() !== payload) return;
      clearTimeout(timer);
      ws.off('pong', on);
      resolve(performance.now() - t0);
    };
    ws.on('pong', on);
    ws.ping(payload);
  });
}

t.test('a ping reaches the upstream and its pong comes back from there; the other way too', async (t) => {
  const ws = new WebSocket(url());
  await once(ws, 'open');
  t.teardown(() => ws.terminate());
  t.not(await pingPong(ws, 'p1', 3000), null, 'pong received');
  t.ok(pingsAtServer.includes('p1'), 'the upstream saw the ping: the sidecar relayed it');
  const clientPings: string[] = [];
  ws.on('ping', (d) => clientPings.push(d.toString()));
  for (let i = 0; i < 100 && !serverSide; i++) await sleep(10);
  serverSide!.ping('s1');
  for (let i = 0; i < 100 && !pongsAtServer.includes('s1'); i++) await sleep(10);
  t.ok(clientPings.includes('s1'), 'the client saw the upstream ping');
  t.ok(pongsAtServer.includes('s1'), 'and the upstream got the client pong');
});

t.test('a frozen partition stops pings; they flow again on heal', async (t) => {
  const ws = new WebSocket(url());
  await once(ws, 'open');
  t.teardown(() => ws.terminate());
  t.equal((await call(sc.apiUrl, 'POST', '/proxies/peer/toxics', { name: 'cut', type: 'partition', stream: 'both', attributes: { existing: 'freeze' } })).status, 200);
  const during = pingPong(ws, 'frozen', 5000);
  await sleep(800);
  const early = await Promise.race([during, sleep(10).then(() => 'pending' as const)]);
  t.equal(early, 'pending', 'no pong while partitioned (the sidecar does not answer pings itself)');
  await call(sc.apiUrl, 'DELETE', '/proxies/peer/toxics/cut');
  const ms = await during;
  t.ok(ms !== null && ms >= 790, `the held ping went through on heal (${ms?.toFixed(0)} ms)`);
});

t.test('latency applies to pings', async (t) => {
  const ws = new WebSocket(url());
  await once(ws, 'open');
  t.teardown(() => ws.terminate());
  await call(sc.apiUrl, 'POST', '/proxies/peer/toxics', { name: 'slow', type: 'latency', stream: 'downstream', attributes: { latency: 200 } });
  const ms = await pingPong(ws, 'slow', 5000);
  t.ok(ms !== null && ms >= 199, `pong after ${ms?.toFixed(1)} ms with 200 ms downstream latency`);
  await call(sc.apiUrl, 'DELETE', '/proxies/peer/toxics/slow');
});

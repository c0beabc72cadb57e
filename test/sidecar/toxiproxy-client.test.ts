/**
 * An unmodified Toxiproxy client (npm toxiproxy-node-client) drives the sidecar's Toxiproxy-compatible API: proxies
 * (create, get, list, populate, update, down/up, remove, reset, version) and every toxic type Toxiproxy has, each
 * checked on the wire against a real tcp upstream: delay added, throughput, FIN held, data swallowed then closed,
 * RST, slices, bytes truncated, refused while down.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Toxiproxy, ToxiproxyError, type Proxy, type ICreateToxicBody } from 'toxiproxy-node-client';
import { connect, echoServer, outcome, portOf, roundTrip, sidecar, sleep } from './helpers.js';

const echo = await echoServer();
/** An upstream that says hello and closes at once (for slow_close). */
const greeter = net.createServer((s) => {
  s.on('error', () => {});
  s.end('hello');
});
greeter.listen(0, '127.0.0.1');
await once(greeter, 'listening');
const greeterPort = (greeter.address() as net.AddressInfo).port;
const sc = await sidecar();
const toxiproxy = new Toxiproxy(sc.apiUrl);
t.teardown(async () => {
  await sc.close();
  await echo.close();
  await new Promise((r) => greeter.close(r));
});

let proxy: Proxy;
const port = () => portOf(proxy.listen);
t.beforeEach(async () => {
  await toxiproxy.reset();
});

async function median(n: number, f: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await f());
  xs.sort((a, b) => a - b);
  return xs[Math.floor(n / 2)]!;
}

t.test('proxies: create, get, list, populate, version, errors as ToxiproxyError', async (t) => {
  proxy = await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}` });
  t.equal(proxy.name, 'echo');
  t.ok(port() > 0, 'the real port is reported');
  t.equal(proxy.enabled, true);
  t.equal((await toxiproxy.get('echo')).upstream, `127.0.0.1:${echo.port}`);
  t.same(Object.keys(await toxiproxy.getAll()), ['echo']);
  const populated = await toxiproxy.populate([{ name: 'greeter', listen: '127.0.0.1:0', upstream: `127.0.0.1:${greeterPort}` }] as never);
  t.same(Object.keys(populated), ['greeter'], 'populate answers {proxies: [...]}');
  t.match(await toxiproxy.getVersion(), /\d+\.\d+/, 'version');
  const missing = await toxiproxy.get('nope').then(() => null, (e: unknown) => e);
  t.ok(missing instanceof ToxiproxyError, 'a 404 is a ToxiproxyError');
  const dup = await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' }).then(() => null, (e: unknown) => e);
  t.ok(dup instanceof ToxiproxyError, 'a duplicate name is refused');
  const s = await connect(port());
  t.ok((await roundTrip(s, Buffer.from('ping'))) >= 0, 'traffic flows');
  s.destroy();
});

t.test('latency: the delay shows on the wire; update changes it in place; getToxic reads it back', async (t) => {
  const base = await median(5, async () => {
    const s = await connect(port());
    const ms = await roundTrip(s, Buffer.from('x'));
    s.destroy();
    return ms;
  });
  const toxic = await proxy.addToxic({ name: 'lat', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 100, jitter: 0 } } as ICreateToxicBody<unknown>);
  t.equal(toxic.name, 'lat');
  t.same(toxic.attributes, { latency: 100, jitter: 0 });
  const s = await connect(port());
  const d1 = await roundTrip(s, Buffer.from('x'));
  t.ok(d1 - base >= 100 && d1 < 1000, `100 ms asked: ${d1.toFixed(1)} ms round trip`);
  const updated = await toxic.update({ attributes: { latency: 250, jitter: 0 } } as never);
  t.equal((updated.attributes as { latency: number }).latency, 250, 'update answers the new attributes');
  const d2 = await roundTrip(s, Buffer.from('y'));
  t.ok(d2 >= 250 && d2 < 2500, `250 ms after update: ${d2.toFixed(1)} ms`);
  t.equal(((await proxy.getToxic('lat')).attributes as { latency: number }).latency, 250, 'getToxic');
  await toxic.remove();
  const d3 = await roundTrip(s, Buffer.from('z'));
  t.ok(d3 < 100, `removed: ${d3.toFixed(1)} ms`);
  s.destroy();
});

t.test('latency with toxicity 0 affects no connection', async (t) => {
  await proxy.addToxic({ name: 'never', type: 'latency', stream: 'downstream', toxicity: 0, attributes: { latency: 300, jitter: 0 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  const d = await roundTrip(s, Buffer.from('x'));
  t.ok(d < 300, `${d.toFixed(1)} ms`);
  s.destroy();
});

t.test('bandwidth: 100 KB/s downstream stretches 60 KB to about 0.6 s, bytes intact', async (t) => {
  await proxy.addToxic({ name: 'bw', type: 'bandwidth', stream: 'downstream', toxicity: 1, attributes: { rate: 100 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  const data = Buffer.alloc(60 * 1024, 'abcdefgh');
  const t0 = performance.now();
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  s.write(data);
  for (let i = 0; i < 1000 && Buffer.concat(parts).length < data.length; i++) await sleep(10);
  const ms = performance.now() - t0;
  t.ok(Buffer.concat(parts).equals(data), 'every byte, in order');
  t.ok(ms >= 450 && ms < 6000, `60 KB at 100 KB/s took ${ms.toFixed(0)} ms`);
  s.destroy();
});

t.test('slow_close: the upstream FIN reaches the client 300 ms late', async (t) => {
  const g = await toxiproxy.get('greeter');
  await g.addToxic({ name: 'sc', type: 'slow_close', stream: 'downstream', toxicity: 1, attributes: { delay: 300 } } as ICreateToxicBody<unknown>);
  const s = net.connect({ port: portOf(g.listen), host: '127.0.0.1' });
  s.on('error', () => {});
  const [hello] = await once(s, 'data');
  const t0 = performance.now();
  t.equal(String(hello), 'hello', 'data passes at once');
  await once(s, 'end');
  const ms = performance.now() - t0;
  t.ok(ms >= 280 && ms < 3000, `FIN after ${ms.toFixed(0)} ms`);
  s.destroy();
});

t.test('timeout: data swallowed, then the connection is closed after 300 ms', async (t) => {
  await proxy.addToxic({ name: 'to', type: 'timeout', stream: 'upstream', toxicity: 1, attributes: { timeout: 300 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  s.write('lost');
  const o = await outcome(s, 3000);
  t.not(o.how, 'open', 'closed');
  t.equal(o.data.length, 0, 'nothing got through');
  t.ok(o.ms >= 250, `after ${o.ms.toFixed(0)} ms`);
});

t.test('reset_peer: timeout 0 resets the connection (ECONNRESET), as Toxiproxy 2.12', async (t) => {
  await proxy.addToxic({ name: 'rp', type: 'reset_peer', stream: 'upstream', toxicity: 1, attributes: { timeout: 0 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  s.write('x');
  const o = await outcome(s, 3000);
  t.equal(o.how, 'reset', 'RST seen by the client');
  t.equal(o.data.length, 0);
});

t.test('reset_peer with a timeout: data arms it, the RST comes after 200 ms', async (t) => {
  await proxy.addToxic({ name: 'rp', type: 'reset_peer', stream: 'upstream', toxicity: 1, attributes: { timeout: 200 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  s.write('x');
  const o = await outcome(s, 3000);
  t.equal(o.how, 'reset');
  t.ok(o.ms >= 180, `after ${o.ms.toFixed(0)} ms`);
});

t.test('slicer: 2000 bytes arrive in many small reads, intact', async (t) => {
  await proxy.addToxic({ name: 'sl', type: 'slicer', stream: 'downstream', toxicity: 1, attributes: { average_size: 50, size_variation: 0, delay: 2000 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  const data = Buffer.alloc(2000, 'xyz');
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  s.write(data);
  for (let i = 0; i < 500 && Buffer.concat(parts).length < data.length; i++) await sleep(10);
  t.ok(Buffer.concat(parts).equals(data), 'intact');
  t.ok(parts.length >= 10, `${parts.length} reads (one write of 2000 bytes)`);
  s.destroy();
});

t.test('limit_data: exactly 100 bytes, then the connection closes', async (t) => {
  await proxy.addToxic({ name: 'ld', type: 'limit_data', stream: 'downstream', toxicity: 1, attributes: { bytes: 100 } } as ICreateToxicBody<unknown>);
  const s = await connect(port());
  s.write(Buffer.alloc(1000, 'q'));
  const o = await outcome(s, 3000);
  t.not(o.how, 'open', 'closed');
  t.equal(o.data.length, 100, 'truncated at 100 bytes');
});

t.test('down and up: a disabled proxy refuses connections, enabling it again serves them', async (t) => {
  const down = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  t.equal(down.enabled, false, 'reported disabled');
  const refused = await new Promise<string>((r) => net.connect(port(), '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); r('connected'); }).on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')));
  t.equal(refused, 'ECONNREFUSED');
  const up = await proxy.update({ enabled: true, listen: proxy.listen, upstream: proxy.upstream });
  t.equal(up.enabled, true);
  const s = await connect(port());
  t.ok((await roundTrip(s, Buffer.from('back'))) >= 0, 'serves again on the same address');
  s.destroy();
});

t.test('reset re-enables proxies and removes toxics', async (t) => {
  await proxy.addToxic({ name: 'lat', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 500, jitter: 0 } } as ICreateToxicBody<unknown>);
  await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  await toxiproxy.reset();
  t.equal((await toxiproxy.get('echo')).enabled, true, 'enabled again');
  const s = await connect(port());
  t.ok((await roundTrip(s, Buffer.from('x'))) < 500, 'no latency left');
  s.destroy();
});

t.test('remove deletes the proxy and closes its listener', async (t) => {
  const tmp = await toxiproxy.createProxy({ name: 'tmp', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}` });
  await tmp.remove();
  t.notOk(Object.keys(await toxiproxy.getAll()).includes('tmp'));
  const r = await new Promise<string>((res) => net.connect(portOf(tmp.listen), '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); res('connected'); }).on('error', (e: NodeJS.ErrnoException) => res(e.code ?? 'error')));
  t.equal(r, 'ECONNREFUSED');
});

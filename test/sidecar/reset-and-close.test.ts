/**
 * reset_peer as Toxiproxy's (armed by data, RST on both sides, timeout 0 at once), black-holed connections closed
 * when the client goes away, and latency that is never early.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { call, connect, echoServer, outcome, portOf, roundTrip, sidecar, sleep, addToxic, linkPort } from './helpers.js';

/** An echo server that records how each of its sockets ended: 'reset' (ECONNRESET) or 'fin'. */
async function recordingEcho() {
  const ends: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    let how = 'fin';
    s.on('error', (e: NodeJS.ErrnoException) => (how = e.code === 'ECONNRESET' ? 'reset' : (e.code ?? 'error')));
    s.on('close', () => ends.push(how));
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, ends, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const up = await recordingEcho();
const echo = await echoServer();
const sc = await sidecar({
  links: [
    { name: 'rec', listen: '127.0.0.1:0', upstream: `127.0.0.1:${up.port}`, protocol: 'tcp', enabled: true },
    { name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true },
  ],
});
t.teardown(async () => {
  await sc.close();
  await up.close();
  await echo.close();
});
const port = (name: string) => linkPort(sc, name);
const add = (link: string, toxic: object) => addToxic(sc, link, toxic);
t.afterEach(async () => {
  await call(sc.apiUrl, 'POST', '/reset');
});
const until = async (what: () => boolean, ms = 3000) => {
  for (const t0 = Date.now(); !what() && Date.now() - t0 < ms; ) await sleep(10);
  return what();
};

t.test('reset_peer waits for data, then resets both sides with an RST', async (t) => {
  await add('rec', { name: 'rst', type: 'reset_peer', stream: 'upstream', attributes: { timeout: 200 } });
  const s = await connect(port('rec'));
  t.equal((await outcome(s, 600)).how, 'open', 'an idle connection is left alone');
  const endsBefore = up.ends.length;
  const t0 = performance.now();
  s.write('armed');
  const o = await outcome(s, 3000);
  const ms = performance.now() - t0;
  t.equal(o.how, 'reset', 'the client sees ECONNRESET');
  t.ok(ms >= 190, `${ms.toFixed(0)} ms after the data (timeout 200)`);
  t.equal(o.data.length, 0, 'the data that armed it was not delivered');
  t.ok(await until(() => up.ends.length > endsBefore), 'upstream socket closed');
  t.equal(up.ends[up.ends.length - 1], 'reset', 'the upstream sees an RST too');
});

t.test('reset_peer timeout 0 resets at once, idle or not', async (t) => {
  const idle = await connect(port('rec'));
  await roundTrip(idle, Buffer.from('hi'));
  const endsBefore = up.ends.length;
  await add('rec', { name: 'rst0', type: 'reset_peer', attributes: { timeout: 0 } });
  t.equal((await outcome(idle, 2000)).how, 'reset', 'an existing idle connection is reset');
  t.ok(await until(() => up.ends.length > endsBefore), 'upstream closed');
  t.equal(up.ends[up.ends.length - 1], 'reset', 'with an RST');
  const fresh = await connect(port('rec'));
  t.equal((await outcome(fresh, 2000)).how, 'reset', 'a new connection is reset at once');
});

t.test('a black-holed client that goes away is closed, not left in CLOSE_WAIT', async (t) => {
  await add('echo', { name: 'cut', type: 'partition', stream: 'both', attributes: { new: 'blackhole' } });
  const s = net.connect({ port: port('echo'), host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  s.resume();
  const closed = new Promise<string>((r) => {
    s.once('end', () => r('fin'));
    s.once('close', () => r('close'));
  });
  s.end();
  t.not(await Promise.race([closed, sleep(3000).then(() => 'still open')]), 'still open', 'accept-black-holed socket closed after the client FIN');
  s.destroy();

  await call(sc.apiUrl, 'POST', '/reset');
  await add('echo', { name: 'bh', type: 'blackhole', stream: 'upstream' });
  const b = net.connect({ port: port('echo'), host: '127.0.0.1', allowHalfOpen: true });
  b.on('error', () => {});
  await once(b, 'connect');
  b.resume();
  b.write('swallowed');
  const ended = new Promise<string>((r) => b.once('end', () => r('fin')));
  b.end();
  t.equal(await Promise.race([ended, sleep(3000).then(() => 'still open')]), 'fin', 'blackhole fault: the FIN goes on, the connection closes');
  b.destroy();

  await call(sc.apiUrl, 'POST', '/reset');
  await add('echo', { name: 'silent', type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } });
  const c = net.connect({ port: port('echo'), host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  await once(c, 'connect');
  c.resume();
  c.write('swallowed');
  const cEnded = new Promise<string>((r) => c.once('end', () => r('fin')));
  c.end();
  t.equal(await Promise.race([cEnded, sleep(3000).then(() => 'still open')]), 'fin', 'timeout 0 (silent forever): a leaving client still closes it');
  c.destroy();
});

t.test('latency is never early: every chunk takes at least the asked 50 ms, sender to receiver', async (t) => {
  // The server stamps each 4-byte record as it sends it; the same process receives it, so one monotonic clock
  // times the whole path. Sends at scattered sub-millisecond phases catch a queue that releases a hair early.
  const sentAt: number[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    let i = 0;
    const next = () => {
      if (i >= 400 || s.destroyed) return;
      const rec = Buffer.alloc(4);
      rec.writeUInt32BE(i);
      sentAt[i++] = performance.now();
      s.write(rec);
      setTimeout(next, 1 + Math.random() * 4);
    };
    next();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const link = await call(sc.apiUrl, 'POST', '/proxies', { name: 'stamped', listen: '127.0.0.1:0', upstream: `127.0.0.1:${(server.address() as net.AddressInfo).port}` });
  t.teardown(() => call(sc.apiUrl, 'DELETE', '/proxies/stamped'));
  await add('stamped', { type: 'latency', stream: 'downstream', attributes: { latency: 50 } });
  const s = await connect(portOf(link.body.listen));
  const delays: number[] = [];
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4) {
        delays.push(now - sentAt[buf.readUInt32BE(0)]!);
        buf = buf.subarray(4);
      }
      if (delays.length >= 400) resolve();
    });
  });
  const min = Math.min(...delays);
  t.ok(min >= 50, `min of ${delays.length} chunks: ${min.toFixed(3)} ms (asked 50)`);
  s.destroy();
});

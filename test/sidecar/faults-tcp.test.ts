/** Every tcp fault, observed from outside with real sockets, pg and ioredis. */
import t from 'tap';
import net from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';
import { call, connect, echoServer, outcome, portOf, quantile, roundTrip, sidecar, sleep } from './helpers.js';

const echo = await echoServer();
const sc = await sidecar({
  links: [
    { name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true },
    { name: 'postgres', listen: '127.0.0.1:0', upstream: '127.0.0.1:5432', protocol: 'tcp', enabled: true },
    { name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', protocol: 'tcp', enabled: true },
  ],
});
t.teardown(async () => {
  await sc.close();
  await echo.close();
});
const port = (name: string) => portOf(sc.sidecar.links.get(name)!.spec().listen);
const add = async (link: string, toxic: object) => {
  const r = await call(sc.apiUrl, 'POST', `/proxies/${link}/toxics`, toxic);
  if (r.status !== 200) throw new Error(`add toxic failed: ${r.text}`);
  return r.body;
};
t.afterEach(async () => {
  await call(sc.apiUrl, 'POST', '/reset');
});

t.test('latency: measured delay, and pipelined chunks do not add up', async (t) => {
  const s = await connect(port('echo'));
  const base = await roundTrip(s, Buffer.from('x'));
  await add('echo', { type: 'latency', stream: 'downstream', attributes: { latency: 80 } });
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) samples.push(await roundTrip(s, Buffer.from('x')));
  const p50 = quantile(samples, 0.5);
  t.ok(p50 >= 79 && p50 < 800, `round trip p50 ${p50.toFixed(1)} ms with 80 ms latency (base ${base.toFixed(2)} ms)`);
  // 20 writes 5 ms apart: each is delayed 80 ms from its own arrival, so all arrive by ~80+100 ms, not 20x80.
  const t0 = Date.now();
  let got = 0;
  const done = new Promise<void>((r) => s.on('data', (d) => { got += d.length; if (got >= 20) r(); }));
  for (let i = 0; i < 20; i++) {
    s.write('y');
    await sleep(5);
  }
  await done;
  const total = Date.now() - t0;
  t.ok(total < 700, `20 pipelined chunks took ${total} ms in all (not 1600)`);
  s.destroy();
});

t.test('latency removed under load releases held data at once', async (t) => {
  await add('echo', { name: 'slow', type: 'latency', attributes: { latency: 5000 } });
  const s = await connect(port('echo'));
  const p = roundTrip(s, Buffer.from('held'), 3000);
  await sleep(50);
  const t0 = Date.now();
  const del = await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/slow');
  t.equal(del.status, 204);
  const ms = await p;
  t.ok(Date.now() - t0 < 1000, `held chunk delivered ${Date.now() - t0} ms after the delete (${ms.toFixed(0)} ms round trip)`);
  s.destroy();
});

t.test('bandwidth: 100 KB at 200 KB/s takes about half a second', async (t) => {
  await add('echo', { type: 'bandwidth', attributes: { rate: 200 } });
  const s = await connect(port('echo'));
  const ms = await roundTrip(s, Buffer.alloc(100_000, 1), 5000);
  t.ok(ms > 430 && ms < 5000, `100 KB took ${ms.toFixed(0)} ms`);
  s.destroy();
});

t.test('slow_close delays the FIN', async (t) => {
  await add('echo', { type: 'slow_close', attributes: { delay: 300 } });
  const s = net.connect({ port: port('echo'), host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => s.once('connect', r));
  const t0 = Date.now();
  s.resume();
  s.end('bye');
  await new Promise((r) => s.once('end', r));
  const ms = Date.now() - t0;
  t.ok(ms >= 290 && ms < 3000, `FIN came after ${ms} ms`);
  s.destroy();
});

t.test('timeout: data vanishes, then the connection closes', async (t) => {
  await add('echo', { type: 'timeout', stream: 'upstream', attributes: { timeout: 300 } });
  const s = await connect(port('echo'));
  s.write('lost');
  const o = await outcome(s, 5000);
  t.equal(o.data.length, 0, 'nothing came back');
  t.not(o.how, 'open', 'connection closed');
  t.ok(o.ms >= 250 && o.ms < 3000, `closed after ${o.ms.toFixed(0)} ms`);
});

t.test('reset_peer: a real RST when it fires, nothing at toxicity 0', async (t) => {
  await add('echo', { name: 'rst0', type: 'reset_peer', toxicity: 0, attributes: { timeout: 0 } });
  const quiet = await connect(port('echo'));
  t.equal((await outcome(quiet, 200)).how, 'open', 'toxicity 0: never reset (unlike Toxiproxy)');
  await roundTrip(quiet, Buffer.from('ok'));
  t.pass('still echoes');
  quiet.destroy();
  await add('echo', { name: 'rst', type: 'reset_peer', stream: 'upstream', attributes: { timeout: 100 } });
  const s = await connect(port('echo'));
  s.write('arm'); // like Toxiproxy's, it waits for data
  const o = await outcome(s, 2000);
  t.equal(o.how, 'reset', 'client sees ECONNRESET');
  t.ok(o.ms >= 90, `after ${o.ms.toFixed(0)} ms`);
});

t.test('slicer: one write arrives as many small chunks', async (t) => {
  await add('echo', { type: 'slicer', stream: 'upstream', attributes: { average_size: 10, size_variation: 5, delay: 10000 } });
  const s = await connect(port('echo'));
  let chunks = 0;
  s.on('data', () => chunks++);
  await roundTrip(s, Buffer.alloc(200, 97));
  t.ok(chunks >= 8, `200 bytes came back in ${chunks} chunks`);
  s.destroy();
});

t.test('limit_data: exactly N bytes, then closed', async (t) => {
  await add('echo', { type: 'limit_data', attributes: { bytes: 1000 } });
  const s = await connect(port('echo'));
  s.write(Buffer.alloc(5000, 1));
  const o = await outcome(s, 2000);
  t.equal(o.data.length, 1000, 'got exactly 1000 bytes');
  t.not(o.how, 'open', 'then closed');
});

t.test('loss (chunk) and blackhole drop data; loss (connection) resets new connections', async (t) => {
  await add('echo', { name: 'bh', type: 'blackhole', stream: 'upstream' });
  const s = await connect(port('echo'));
  s.write('gone');
  const o = await outcome(s, 300);
  t.same([o.how, o.data.length], ['open', 0], 'blackhole: open and silent');
  await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/bh');
  await roundTrip(s, Buffer.from('back'), 2000);
  t.pass('flows again once removed');
  s.destroy();

  await add('echo', { name: 'lossy', type: 'loss', stream: 'upstream', attributes: { probability: 0.5 } });
  const l = await connect(port('echo'));
  let back = 0;
  l.on('data', (d) => (back += d.length));
  for (let i = 0; i < 200; i++) {
    l.write('z');
    await sleep(1); // separate writes -> separate chunks
  }
  await sleep(100);
  t.ok(back > 40 && back < 160, `about half of 200 one-byte chunks came back: ${back}`);
  l.destroy();
  await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/lossy');

  await add('echo', { name: 'connloss', type: 'loss', attributes: { mode: 'connection', probability: 1 } });
  const c = await connect(port('echo'));
  t.equal((await outcome(c, 1000)).how, 'reset', 'connection-mode loss resets new connections');
});

t.test('partition: refuse or black-hole new connections; freeze then heal, or reset, existing ones', async (t) => {
  const before = await connect(port('echo'));
  await roundTrip(before, Buffer.from('up'));
  await add('echo', { name: 'cut', type: 'partition', stream: 'both' });
  const refused = await connect(port('echo'));
  t.equal((await outcome(refused, 1000)).how, 'reset', 'new connection refused with RST');
  const p = roundTrip(before, Buffer.from('frozen'), 3000);
  await sleep(300);
  t.equal((await outcome(before, 10)).data.length, 0, 'existing connection frozen: nothing comes back');
  await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/cut');
  const ms = await p;
  t.ok(ms >= 290, `frozen data delivered on heal (${ms.toFixed(0)} ms)`);
  before.destroy();

  await add('echo', { name: 'cut2', type: 'partition', attributes: { new: 'blackhole' } });
  const bh = await connect(port('echo'));
  bh.write('hello?');
  t.same((await outcome(bh, 300)).how, 'open', 'black-holed: accepted but silent');
  await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/cut2');
  t.not((await outcome(bh, 1000)).how, 'open', 'black-holed connection closed on heal');

  const victim = await connect(port('echo'));
  await roundTrip(victim, Buffer.from('up'));
  await add('echo', { name: 'cut3', type: 'partition', stream: 'both', attributes: { existing: 'reset' } });
  t.equal((await outcome(victim, 1000)).how, 'reset', 'existing connection reset');
});

t.test('corrupt (bytes) flips bits at the asked rate', async (t) => {
  await add('echo', { type: 'corrupt', attributes: { mode: 'bytes', rate: 0.05 } });
  const s = await connect(port('echo'));
  const sent = Buffer.alloc(20_000, 0x41);
  const parts: Buffer[] = [];
  s.on('data', (d) => parts.push(d));
  await roundTrip(s, sent);
  const got = Buffer.concat(parts);
  let diff = 0;
  for (let i = 0; i < sent.length; i++) if (got[i] !== sent[i]) diff++;
  t.ok(diff > 700 && diff < 1300, `${diff} of 20000 bytes flipped at rate 0.05`);
  s.destroy();
});

t.test('pg_error: PostgreSQL clients see the chosen SQLSTATE', async (t) => {
  await add('postgres', { type: 'pg_error', attributes: { sqlstate: '53300', message: 'sorry, too many clients already' } });
  const c = new pg.Client({ host: '127.0.0.1', port: port('postgres'), user: 'postgres', database: 'postgres' });
  const err = await c.connect().then(() => null, (e: { code?: string; message: string }) => e);
  t.equal(err?.code, '53300', `pg error: ${err?.message}`);
  await call(sc.apiUrl, 'DELETE', '/proxies/postgres/toxics/pg_error_downstream');
  const ok = new pg.Client({ host: '127.0.0.1', port: port('postgres'), user: 'postgres', database: 'postgres', ssl: false });
  await ok.connect();
  t.equal((await ok.query('select 1 as one')).rows[0].one, 1, 'connects again once removed');
  await ok.end();
  await add('postgres', { type: 'pg_error', attributes: { sqlstate: '57P01', message: 'terminating connection due to administrator command' } });
  const c2 = new pg.Client({ host: '127.0.0.1', port: port('postgres'), user: 'postgres', database: 'postgres' });
  const err2 = await c2.connect().then(() => null, (e: { code?: string }) => e);
  t.equal(err2?.code, '57P01');
});

t.test('redis_error: ioredis sees -OOM and -LOADING replies while active', async (t) => {
  const r = new Redis({ host: '127.0.0.1', port: port('redis'), db: 11, enableReadyCheck: false, maxRetriesPerRequest: 0, lazyConnect: true });
  await r.connect();
  t.equal(await r.ping(), 'PONG');
  await add('redis', { name: 'oom', type: 'redis_error', attributes: { error: "OOM command not allowed when used memory > 'maxmemory'." } });
  const e = await r.set('sidecar-test:x', '1').then(() => null, (err: Error) => err);
  t.match(e?.message ?? '', /^OOM command not allowed/, 'OOM error reply');
  const pipe = await r.pipeline().get('a').get('b').get('c').exec();
  t.equal(pipe!.filter(([err]) => err).length, 3, 'each pipelined command gets its error');
  await call(sc.apiUrl, 'PATCH', '/proxies/redis/toxics/oom', { attributes: { error: 'LOADING Redis is loading the dataset in memory' } });
  const e2 = await r.get('x').then(() => null, (err: Error) => err);
  t.match(e2?.message ?? '', /^LOADING/, 'LOADING after a PATCH');
  await call(sc.apiUrl, 'DELETE', '/proxies/redis/toxics/oom');
  t.equal(await r.ping(), 'PONG', 'normal replies once removed');
  r.disconnect();
});

t.test('a timed fault removes itself; /faults shows the time left', async (t) => {
  const added = Date.now();
  await add('echo', { name: 'brief', type: 'latency', attributes: { latency: 200 }, duration: '2500ms' });
  const f = (await call(sc.apiUrl, 'GET', '/faults')).body.faults.find((x: { name: string }) => x.name === 'brief');
  t.ok(f.remaining_ms > 0 && f.remaining_ms <= 2500, `remaining ${f.remaining_ms} ms`);
  const s = await connect(port('echo'));
  t.ok((await roundTrip(s, Buffer.from('a'))) >= 195, 'delayed while active');
  await sleep(Math.max(0, added + 2600 - Date.now()));
  t.ok((await roundTrip(s, Buffer.from('b'))) < 150, 'gone after its duration');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies/echo/toxics')).body.length, 0);
  s.destroy();
});

t.test('toxicity is rolled once per connection', async (t) => {
  await add('echo', { type: 'latency', toxicity: 0.5, attributes: { latency: 100 } });
  let slow = 0;
  for (let i = 0; i < 24; i++) {
    const s = await connect(port('echo'));
    const a = await roundTrip(s, Buffer.from('1'));
    const b = await roundTrip(s, Buffer.from('2'));
    t.equal(a >= 99, b >= 99, 'same decision for every chunk of a connection');
    if (a >= 99) slow++;
    s.destroy();
  }
  t.ok(slow >= 5 && slow <= 19, `${slow} of 24 connections affected at toxicity 0.5`);
});

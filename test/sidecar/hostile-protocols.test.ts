/**
 * Protocol-aware faults against hostile peers: bounded parsers (a bad PostgreSQL startup length, bad RESP lengths,
 * a Nostr frame too deep to re-encode) close or pass that connection, are counted, and never hang or kill the
 * sidecar; redis_error answers the command it replaces, in order, as a FIFO client (ioredis) expects.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import pg from 'pg';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { call, connect, outcome, portOf, sidecar, sleep, spawnSidecar, wsEchoServer } from './helpers.js';

/** /health must answer within a generous bound: a hung event loop fails here instead of hanging the test. */
async function healthy(api: string): Promise<boolean> {
  try {
    const res = await fetch(`${api}/health`, { signal: AbortSignal.timeout(5000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

async function metric(api: string, re: RegExp): Promise<number> {
  const text = await (await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

t.test('pg_error: zero, negative and huge startup lengths close that connection; the sidecar never hangs', async (t) => {
  const sc = await spawnSidecar(['--api-port', '0', '--log-level', 'silent']);
  t.teardown(async () => {
    // A hung sidecar cannot run its SIGTERM handler.
    const killer = setTimeout(() => sc.proc.kill('SIGKILL'), 3000);
    await sc.stop();
    clearTimeout(killer);
  });
  const link = await call(sc.api, 'POST', '/proxies', { name: 'postgres', listen: '127.0.0.1:0', upstream: '127.0.0.1:5432' });
  const port = portOf(link.body.listen);
  t.equal((await call(sc.api, 'POST', '/proxies/postgres/toxics', { type: 'pg_error' })).status, 200);
  const bad: Array<[string, Buffer]> = [
    // Eight bytes: length 0 and the SSLRequest code. The old parser answered 'N' and looped on the same bytes forever.
    ['zero length (SSLRequest code)', Buffer.from([0, 0, 0, 0, 0x04, 0xd2, 0x16, 0x2f])],
    ['negative length (SSLRequest code)', Buffer.from([0xff, 0xff, 0xff, 0xf8, 0x04, 0xd2, 0x16, 0x2f])],
    ['zero length', Buffer.alloc(8)],
    ['length over 10000', Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])],
    ['length 4', Buffer.from([0, 0, 0, 4, 0, 3, 0, 0])],
  ];
  for (const [what, bytes] of bad) {
    const s = await connect(port);
    s.write(bytes);
    const o = await outcome(s, 3000);
    t.not(o.how, 'open', `${what}: connection closed`);
    t.ok(await healthy(sc.api), `${what}: /health still answers`);
  }
  t.equal(await metric(sc.api, /chaos_sidecar_protocol_errors_total\{link="postgres",type="pg_error"\} (\d+)/), bad.length, 'each counted');
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  const err = await c.connect().then(() => null, (e: { code?: string }) => e);
  t.equal(err?.code, '53300', 'a real client still gets the ErrorResponse');
});

t.test('corrupt nostr: a frame nested too deep to re-encode passes untouched and is counted; the sidecar lives', async (t) => {
  const relay = await wsEchoServer();
  const sc = await spawnSidecar(['--api-port', '0', '--log-level', 'silent']);
  t.teardown(async () => {
    await sc.stop();
    await relay.close();
  });
  const link = await call(sc.api, 'POST', '/proxies', { name: 'peer', listen: '127.0.0.1:0', upstream: `127.0.0.1:${relay.port}`, protocol: 'ws' });
  await call(sc.api, 'POST', '/proxies/peer/toxics', { type: 'corrupt', stream: 'upstream', attributes: { mode: 'nostr' } });
  const ws = new WebSocket(`ws://127.0.0.1:${portOf(link.body.listen)}/`);
  await once(ws, 'open');
  const deep = `["EVENT",${'['.repeat(300_000)}${']'.repeat(300_000)},{"content":"x","sig":"00"}]`;
  const echoed = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
  ws.send(deep);
  const back = await Promise.race([echoed, sleep(5000).then(() => 'nothing')]);
  t.equal(back.length, deep.length, 'the frame reached the relay untouched and came back');
  t.ok(await healthy(sc.api), '/health answers');
  t.equal(await metric(sc.api, /chaos_sidecar_protocol_errors_total\{link="peer",type="corrupt"\} (\d+)/), 1, 'counted');
  ws.terminate();
});

const sc = await sidecar({ links: [{ name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', protocol: 'tcp', enabled: true }] });
t.teardown(() => sc.close());
const redisPort = () => portOf(sc.sidecar.links.get('redis')!.spec().listen);
t.afterEach(async () => {
  await call(sc.apiUrl, 'POST', '/reset');
});

t.test('redis_error: bad RESP lengths close that connection and are counted', async (t) => {
  await call(sc.apiUrl, 'POST', '/proxies/redis/toxics', { name: 'loading', type: 'redis_error' });
  const cases: Array<[string, Buffer]> = [
    ['bulk length not a number', Buffer.from('*1\r\n$abc\r\n')],
    ['negative bulk length', Buffer.from('*1\r\n$-5\r\nxx\r\n')],
    ['multibulk over 1M items', Buffer.from('*99999999999\r\n')],
    ['multibulk count not a number', Buffer.from('*x1\r\n')],
    ['inline command over 64 KiB', Buffer.alloc(70_000, 0x61)],
  ];
  for (const [what, bytes] of cases) {
    const s = await connect(redisPort());
    s.write(bytes);
    const o = await outcome(s, 2000);
    t.not(o.how, 'open', `${what}: closed`);
    t.ok(await healthy(sc.apiUrl), `${what}: API alive`);
  }
  t.equal(await metric(sc.apiUrl, /chaos_sidecar_protocol_errors_total\{link="redis",type="redis_error"\} (\d+)/), cases.length, 'each counted');
  const ok = await connect(redisPort());
  ok.write('*1\r\n$4\r\nPING\r\n');
  const o = await outcome(ok, 300);
  t.match(o.data.toString(), /^-LOADING/, 'a well-formed command still gets the error');
  ok.destroy();
});

t.test('redis_error answers the right command: replies to commands already forwarded come first', async (t) => {
  const r = new Redis({ host: '127.0.0.1', port: redisPort(), db: 11, enableReadyCheck: false, maxRetriesPerRequest: 0, lazyConnect: true });
  await r.connect();
  t.teardown(() => r.disconnect());
  const key = `sidecar-test:order:${process.pid}:${Date.now()}`;
  await r.set(`${key}:alice`, 'alice');

  // 1. A command outstanding at the server (BLPOP blocks 1 s) when the fault is added.
  const blocked = r.blpop(`${key}:empty`, 1).then((v) => ({ v }), (e: Error) => ({ e: e.message }));
  await sleep(150);
  await call(sc.apiUrl, 'POST', '/proxies/redis/toxics', { name: 'loading', type: 'redis_error' });
  const after = await r.get(`${key}:bob`).then((v) => ({ v }), (e: Error) => ({ e: e.message }));
  t.same(await blocked, { v: null }, 'BLPOP gets its own (empty) reply');
  t.match(after, { e: /^LOADING/ }, 'the command sent during the fault gets the error');
  await call(sc.apiUrl, 'DELETE', '/proxies/redis/toxics/loading');

  // 2. A reply held by a downstream latency fault when redis_error is added: alice's reply is not bob's.
  await call(sc.apiUrl, 'POST', '/proxies/redis/toxics', { name: 'slow', type: 'latency', stream: 'downstream', attributes: { latency: 300 } });
  const alice = r.get(`${key}:alice`).then((v) => ({ v }), (e: Error) => ({ e: e.message }));
  await sleep(80);
  await call(sc.apiUrl, 'POST', '/proxies/redis/toxics', { name: 'loading', type: 'redis_error' });
  const bob = await r.get(`${key}:bob`).then((v) => ({ v }), (e: Error) => ({ e: e.message }));
  t.same(await alice, { v: 'alice' }, 'GET alice gets alice');
  t.match(bob, { e: /^LOADING/ }, 'GET bob gets the error, not alice');
  await call(sc.apiUrl, 'POST', '/reset');
  t.equal(await r.ping(), 'PONG', 'in step again once removed');
  await r.del(`${key}:alice`);
});

t.test('redis_error added in the middle of a command: the half-sent command completes to the server', async (t) => {
  const key = `sidecar-test:half:${process.pid}:${Date.now()}`;
  const cmd = Buffer.from(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`);
  const s = await connect(redisPort());
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  s.write(cmd.subarray(0, cmd.length - 6));
  await sleep(100);
  await call(sc.apiUrl, 'POST', '/proxies/redis/toxics', { name: 'loading', type: 'redis_error' });
  s.write(Buffer.concat([cmd.subarray(cmd.length - 6), Buffer.from('*1\r\n$4\r\nPING\r\n')]));
  for (let i = 0; i < 100 && !/LOADING[^\n]*\n/.test(Buffer.concat(got).toString()); i++) await sleep(20);
  t.match(Buffer.concat(got).toString(), /^\$-1\r\n-LOADING[^\r]*\r\n$/, 'the GET reply from the server, then the error for PING');
  s.destroy();
});

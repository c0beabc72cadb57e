/** tcp links with real clients: PostgreSQL through pg, Redis through ioredis, half-close, dead upstream, metrics. */
import t from 'tap';
import pg from 'pg';
import { Redis } from 'ioredis';
import net from 'node:net';
import { once } from 'node:events';
import { call, connect, echoServer, portOf, roundTrip, sidecar, outcome } from './helpers.js';

t.test('PostgreSQL and Redis work unchanged through tcp links', async (t) => {
  const sc = await sidecar({
    links: [
      { name: 'postgres', listen: '127.0.0.1:0', upstream: '127.0.0.1:5432', protocol: 'tcp', enabled: true },
      { name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', protocol: 'tcp', enabled: true },
    ],
  });
  t.teardown(() => sc.close());
  const links = (await call(sc.apiUrl, 'GET', '/proxies')).body;
  const pgPort = portOf(links.postgres.listen);
  const redisPort = portOf(links.redis.listen);

  const client = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', database: 'postgres' });
  await client.connect();
  const r = await client.query('select 40 + 2 as answer, repeat($1, 100000) as big', ['x']);
  t.equal(r.rows[0].answer, 42);
  t.equal(r.rows[0].big.length, 100000, 'a 100 KB row crosses intact');
  await client.end();

  const redis = new Redis({ host: '127.0.0.1', port: redisPort, db: 11, lazyConnect: true, maxRetriesPerRequest: 0 });
  await redis.connect();
  const key = `sidecar-test:${process.pid}:k`;
  await redis.set(key, 'v'.repeat(50000));
  t.equal((await redis.get(key))!.length, 50000);
  const pipe = redis.pipeline();
  for (let i = 0; i < 200; i++) pipe.incr(`${key}:n`);
  const res = await pipe.exec();
  t.equal(res![199]![1], 200, 'a 200-command pipeline comes back in order');
  await redis.del(key, `${key}:n`);
  redis.disconnect();

  const m = (await call(sc.apiUrl, 'GET', '/metrics')).text;
  t.match(m, /chaos_sidecar_bytes_total\{link="postgres",direction="downstream"\} \d{6,}/, 'bytes counted per link and direction');
  t.match(m, /chaos_sidecar_connections_total\{link="redis"\} 1/, 'connections counted');
});

t.test('half-close: the client FIN reaches the server and the reply still comes back', async (t) => {
  // A server that answers only after the client finished sending.
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d) => parts.push(d));
    s.on('end', () => s.end(Buffer.concat(parts).toString().toUpperCase()));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const sc = await sidecar({ links: [{ name: 'h', listen: '127.0.0.1:0', upstream: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(() => sc.close());
  const s = net.connect({ port: portOf(sc.sidecar.links.get('h')!.spec().listen), host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  s.end('hello');
  const o = await outcome(s, 3000);
  t.equal(o.data.toString(), 'HELLO');
  t.equal(o.how, 'close');
});

t.test('a dead upstream fails fast and never stalls other clients', async (t) => {
  const echo = await echoServer();
  t.teardown(() => echo.close());
  // A port nothing listens on.
  const dead = net.createServer().listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const sc = await sidecar({
    links: [
      { name: 'dead', listen: '127.0.0.1:0', upstream: `127.0.0.1:${deadPort}`, protocol: 'tcp', enabled: true },
      { name: 'live', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true },
    ],
  });
  t.teardown(() => sc.close());
  const deadLink = sc.sidecar.links.get('dead')!;
  const liveLink = sc.sidecar.links.get('live')!;
  const deadClients = await Promise.all(Array.from({ length: 20 }, () => connect(portOf(deadLink.spec().listen))));
  const live = await connect(portOf(liveLink.spec().listen));
  const ms = await roundTrip(live, Buffer.from('ping'));
  t.ok(ms < 1000, `live link answers in ${ms.toFixed(1)} ms while 20 clients hit a dead upstream`);
  const outs = await Promise.all(deadClients.map((c) => outcome(c, 2000)));
  t.ok(outs.every((o) => o.how !== 'open'), 'every client of the dead upstream is closed');
  t.equal(deadLink.stats.dialFailures, 20, 'dial failures counted');
  live.destroy();
});

t.test('an upstream that never answers the handshake: the dial times out, other links keep working', async (t) => {
  // A listener whose accept queue is full (backlog 1, event loop stuck): further SYNs are dropped, connect() hangs.
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>{console.log(s.address().port);setTimeout(()=>{const e=Date.now()+20000;while(Date.now()<e);},100)})"]);
  t.teardown(() => child.kill('SIGKILL'));
  const stuckPort = Number((await once(child.stdout, 'data'))[0].toString().trim());
  await new Promise((r) => setTimeout(r, 300));
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 4; i++) fillers.push(net.connect(stuckPort, '127.0.0.1').on('error', () => {}));
  t.teardown(() => fillers.forEach((f) => f.destroy()));
  await new Promise((r) => setTimeout(r, 200));
  const echo = await echoServer();
  t.teardown(() => echo.close());
  const sc = await sidecar({
    dialTimeoutMs: 400,
    links: [
      { name: 'stuck', listen: '127.0.0.1:0', upstream: `127.0.0.1:${stuckPort}`, protocol: 'tcp', enabled: true },
      { name: 'live', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true },
    ],
  });
  t.teardown(() => sc.close());
  const stuck = await connect(portOf(sc.sidecar.links.get('stuck')!.spec().listen));
  const live = await connect(portOf(sc.sidecar.links.get('live')!.spec().listen));
  await roundTrip(live, Buffer.from('ping'));
  t.pass('the live link answers while a dial hangs');
  const o = await outcome(stuck, 6000);
  t.equal(o.how, 'reset', 'the waiting client is reset');
  t.ok(o.ms >= 250 && o.ms < 4000, `after the 400 ms dial timeout (${o.ms.toFixed(0)} ms)`);
  t.equal(sc.sidecar.links.get('stuck')!.stats.dialFailures, 1);
  live.destroy();
});

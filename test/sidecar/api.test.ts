/** The HTTP API: Toxiproxy's contract as its clients use it, our additions, access rules, responsiveness under load. */
import t from 'tap';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { call, connect, echoServer, portOf, quantile, roundTrip, sidecar, sleep, spawnSidecar } from './helpers.js';
import { loadConfig } from '../../sidecar/src/config.js';

t.test('a Toxiproxy client works unchanged: create a proxy, add a latency toxic, see it, remove it', async (t) => {
  const sc = await sidecar();
  t.teardown(() => sc.close());
  const api = sc.apiUrl;
  t.same((await call(api, 'GET', '/version')).body, { version: '0.1.0' });
  t.same((await call(api, 'GET', '/proxies')).body, {}, 'no proxies at start');

  // Exactly what the Go/Ruby clients send.
  const created = await call(api, 'POST', '/proxies', { name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', enabled: true });
  t.equal(created.status, 201);
  t.match(created.body, { name: 'redis', upstream: '127.0.0.1:6379', enabled: true, toxics: [] });
  t.match(created.body.listen, /^127\.0\.0\.1:\d+$/);
  const port = portOf(created.body.listen);
  t.not(port, 0, 'listen shows the real port');
  t.same(Object.keys((await call(api, 'GET', '/proxies')).body), ['redis'], 'GET /proxies is keyed by name');

  const redis = new Redis({ host: '127.0.0.1', port, db: 11, maxRetriesPerRequest: 0, lazyConnect: true });
  await redis.connect();
  await redis.ping();
  let t0 = performance.now();
  await redis.ping();
  const base = performance.now() - t0;

  const toxic = { name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 100, jitter: 0 } };
  const added = await call(api, 'POST', '/proxies/redis/toxics', toxic);
  t.equal(added.status, 200);
  t.same(added.body, toxic, 'the toxic is echoed in Toxiproxy\'s shape');
  t0 = performance.now();
  await redis.ping();
  const slow = performance.now() - t0;
  t.ok(slow >= 99 && slow < 400 && slow - base > 90, `PING took ${slow.toFixed(1)} ms with a 100 ms toxic (${base.toFixed(2)} ms before)`);

  t.same((await call(api, 'GET', '/proxies/redis/toxics')).body, [toxic]);
  t.same((await call(api, 'GET', '/proxies/redis/toxics/latency_downstream')).body, toxic);
  t.same((await call(api, 'GET', '/proxies/redis')).body.toxics, [toxic], 'the proxy lists its toxics');
  const upd = await call(api, 'POST', '/proxies/redis/toxics/latency_downstream', { attributes: { latency: 10 }, toxicity: 1 });
  t.equal(upd.status, 200);
  t.same(upd.body.attributes, { latency: 10, jitter: 0 }, 'update merges attributes');
  t.equal((await call(api, 'DELETE', '/proxies/redis/toxics/latency_downstream')).status, 204);

  // Default toxic name is <type>_<stream>, stream defaults to downstream.
  const dflt = await call(api, 'POST', '/proxies/redis/toxics', { type: 'bandwidth', attributes: { rate: 1000 } });
  t.match(dflt.body, { name: 'bandwidth_downstream', stream: 'downstream', toxicity: 1 });

  // Disabling closes the listener and its connections; enabling reopens on the same port.
  const dis = await call(api, 'POST', '/proxies/redis', { enabled: false });
  t.equal(dis.body.enabled, false);
  const refused = await new Promise<string>((r) => net.connect(port, '127.0.0.1').on('error', (e: NodeJS.ErrnoException) => r(e.code!)).on('connect', () => r('connected')));
  t.equal(refused, 'ECONNREFUSED', 'disabled proxy refuses connections');
  const en = await call(api, 'PATCH', '/proxies/redis', { enabled: true });
  t.equal(portOf(en.body.listen), port, 're-enabled on the same port');
  redis.disconnect();

  t.equal((await call(api, 'POST', '/reset')).status, 204);
  t.same((await call(api, 'GET', '/proxies/redis')).body.toxics, [], 'reset removes toxics');
  t.equal((await call(api, 'DELETE', '/proxies/redis')).status, 204);
  t.equal((await call(api, 'GET', '/proxies/redis')).status, 404);
});

t.test('status codes and error bodies match Toxiproxy', async (t) => {
  const sc = await sidecar();
  t.teardown(() => sc.close());
  const api = sc.apiUrl;
  const e404 = await call(api, 'GET', '/proxies/nope');
  t.same(e404.body, { error: 'proxy not found: nope', status: 404 });
  t.equal((await call(api, 'POST', '/proxies', { name: 'p', upstream: '127.0.0.1:1' })).status, 400, 'missing listen');
  t.equal((await call(api, 'POST', '/proxies', '{not json')).status, 400, 'bad body');
  t.equal((await call(api, 'POST', '/proxies', { name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' })).status, 201);
  const dup = await call(api, 'POST', '/proxies', { name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' });
  t.same(dup.body, { error: 'proxy already exists: p', status: 409 });
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { type: 'nope' })).status, 400, 'unknown type');
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { type: 'latency', stream: 'sideways' })).status, 400, 'bad stream');
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { attributes: {} })).status, 400, 'missing type');
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { type: 'latency', attributes: { latencyy: 1 } })).status, 400, 'unknown attribute');
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { type: 'duplicate' })).status, 400, 'ws-only fault on a tcp link');
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { type: 'latency' })).status, 200);
  t.equal((await call(api, 'POST', '/proxies/p/toxics', { type: 'latency' })).status, 409, 'toxic exists');
  t.equal((await call(api, 'GET', '/proxies/p/toxics/nope')).status, 404);
  t.equal((await call(api, 'DELETE', '/proxies/p/toxics/nope')).status, 404);
  t.equal((await call(api, 'GET', '/proxies/nope/toxics')).status, 404);
  t.equal((await call(api, 'GET', '/nowhere')).status, 404);

  const pop = await call(api, 'POST', '/populate', [
    { name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' },
    { name: 'q', listen: '127.0.0.1:0', upstream: '127.0.0.1:2', enabled: true },
  ]);
  t.equal(pop.status, 201);
  t.same(pop.body.proxies.map((p: { name: string }) => p.name), ['p', 'q']);
  t.equal(pop.body.proxies[0].toxics.length, 1, 'identical proxy kept, with its toxics');
  const pop2 = await call(api, 'POST', '/populate', [{ name: 'q', listen: '127.0.0.1:0', upstream: '127.0.0.1:3' }]);
  t.equal(pop2.body.proxies[0].upstream, '127.0.0.1:3', 'changed proxy replaced');
  t.equal((await call(api, 'POST', '/populate', { name: 'x' })).status, 400, 'populate needs an array');

  // Envoy-style safety valve.
  const small = await sidecar({ maxActiveFaults: 2, links: [{ name: 'v', listen: '127.0.0.1:0', upstream: '127.0.0.1:1', protocol: 'tcp', enabled: true }] });
  t.teardown(() => small.close());
  t.equal((await call(small.apiUrl, 'POST', '/proxies/v/toxics', { name: 'one', type: 'latency' })).status, 200);
  t.equal((await call(small.apiUrl, 'POST', '/proxies/v/toxics', { name: 'two', type: 'latency' })).status, 200);
  const third = await call(small.apiUrl, 'POST', '/proxies/v/toxics', { name: 'three', type: 'latency' });
  t.same(third.body, { error: 'max_active_faults reached: 2 faults are active; remove some first', status: 409 });
  t.equal((await call(small.apiUrl, 'POST', '/proxies/v/toxics/two', { attributes: { latency: 5 } })).status, 200, 'changing an active fault is not adding one');
});

t.test('our API: /faults, /status, /health, /metrics, /profiles', async (t) => {
  const echo = await echoServer();
  const sc = await sidecar({ links: [{ name: 'peer-b', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(async () => { await sc.close(); await echo.close(); });
  const api = sc.apiUrl;
  t.same((await call(api, 'GET', '/health')).body, { status: 'ok' });
  await call(api, 'POST', '/proxies/peer-b/toxics', { name: 'slow', type: 'latency', attributes: { latency: 5 }, duration: '10s' });
  const s = await connect(portOf(sc.sidecar.links.get('peer-b')!.spec().listen));
  await roundTrip(s, Buffer.from('hi'));
  const f = (await call(api, 'GET', '/faults')).body.faults;
  t.equal(f.length, 1);
  t.match(f[0], { link: 'peer-b', name: 'slow', type: 'latency', source: 'api' });
  t.ok(f[0].remaining_ms > 9000, 'time left shown');
  const st = (await call(api, 'GET', '/status')).body;
  t.match(st, { node: 'a', seed: 42, links: [{ name: 'peer-b', active_connections: 1, faults: ['slow'] }] });
  const m = (await call(api, 'GET', '/metrics')).text;
  t.match(m, /chaos_sidecar_faults_fired_total\{link="peer-b",type="latency"\} [1-9]/, 'faults fired by type');
  t.match(m, /chaos_sidecar_active_faults\{link="peer-b",type="latency"\} 1/, 'active faults');
  t.match(m, /chaos_sidecar_active_connections\{link="peer-b"\} 1/, 'open connections');
  t.match(m, /chaos_sidecar_fault_changes_total\{action="added"\} 1/, 'fault events');
  s.destroy();

  const profiles = (await call(api, 'GET', '/profiles')).body;
  for (const p of ['partition', 'db-outage', 'redis-outage', 'latency', 'flaky-network', 'byzantine', 'bandwidth']) t.ok(profiles.available.includes(p), `ships ${p}`);
  const applied = await call(api, 'POST', '/profiles/partition');
  t.equal(applied.status, 200);
  t.same(applied.body.targets, [{ fault: 'partition-peers', links: ['peer-b'] }]);
  t.equal((await call(api, 'GET', '/profiles')).body.active.name, 'partition');
  t.ok(sc.sidecar.links.get('peer-b')!.faults.has('partition-peers'), 'profile fault placed');
  t.equal((await call(api, 'DELETE', '/profiles')).status, 204);
  t.notOk(sc.sidecar.links.get('peer-b')!.faults.has('partition-peers'), 'cleared');
  t.equal((await call(api, 'DELETE', '/profiles')).status, 404, 'nothing to clear');
  const yamlApplied = await call(api, 'POST', '/profiles', 'name: posted\nfaults:\n  - link: "peer-*"\n    action: delay\n    delay: {latency: 20ms}\n', { 'content-type': 'application/yaml' });
  t.equal(yamlApplied.status, 200, yamlApplied.text);
  t.equal(sc.sidecar.links.get('peer-b')!.faults.get('posted.0')!.attributes.latency, 20);
  const bad = await call(api, 'POST', '/profiles', 'faults:\n  - link: x\n    action: delay\n    delay: {latncy: 20ms}\n', { 'content-type': 'application/yaml' });
  t.equal(bad.status, 400);
  t.match(bad.body.error, /<request body>:4: faults\[0\]\.delay\.latncy: unknown key/);
  t.equal((await call(api, 'POST', '/profiles', { name: 'nope' })).status, 404);
});

t.test('access rules: token for every call, foreign browser Origin refused, non-loopback needs a token', async (t) => {
  const sc = await sidecar({ api: { host: '127.0.0.1', port: 0, token: 's3cret' } });
  t.teardown(() => sc.close());
  const api = sc.apiUrl;
  t.equal((await call(api, 'GET', '/proxies')).status, 401, 'reads need the token too');
  const no = await call(api, 'POST', '/proxies', { name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' });
  t.same(no.body.status, 401);
  t.equal((await call(api, 'POST', '/reset', undefined, { authorization: 'Bearer wrong' })).status, 401);
  t.equal((await call(api, 'POST', '/proxies', { name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' }, { authorization: 'Bearer s3cret' })).status, 201);
  t.equal((await call(api, 'DELETE', '/proxies/p', undefined, { 'x-api-token': 's3cret' })).status, 204);
  t.equal((await call(api, 'GET', '/proxies', undefined, { origin: 'http://evil.example', authorization: 'Bearer s3cret' })).status, 403, 'foreign browser Origin refused, token or not');
  t.equal((await call(api, 'GET', '/proxies', undefined, { origin: 'http://localhost:8080', authorization: 'Bearer s3cret' })).status, 200, 'loopback Origin with token allowed');

  const open = await sidecar();
  t.teardown(() => open.close());
  t.equal((await call(open.apiUrl, 'POST', '/reset', undefined, { origin: 'http://evil.example' })).status, 403, 'no token set: foreign browser requests still refused');
  t.equal((await call(open.apiUrl, 'POST', '/reset')).status, 204, 'no token set: local tools work');

  t.throws(() => loadConfig(undefined, { apiHost: '0.0.0.0' }, {}), /not a loopback address: set an API token/);
  t.doesNotThrow(() => loadConfig(undefined, { apiHost: '0.0.0.0', token: 'x' }, {}));
});

/** Echo server + 8 pumping clients in their own process, so the test's event loop only times API calls. */
const LOADGEN = `
const net = require('node:net');
const blob = Buffer.alloc(16384, 7);
let moved = 0;
const srv = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(0, '127.0.0.1', () => console.log('echo ' + srv.address().port));
process.stdin.on('data', (d) => {
  const port = Number(String(d).trim());
  for (let i = 0; i < 8; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('data', (x) => { moved += x.length; });
    // A steady ~64 MB/s over 8 connections: heavy, yet leaves this shared 2-core box some air.
    s.on('connect', () => setInterval(() => { if (s.writableLength < 1 << 20) s.write(blob); }, 2));
  }
  setInterval(() => console.log('moved ' + moved), 100);
});
`;

t.test('the API stays responsive and faults apply at once under load (sidecar as a child process)', async (t) => {
  const sc = await spawnSidecar(['--api-port', '0', '--log-level', 'warn']);
  t.teardown(() => sc.stop());
  const gen = spawn(process.execPath, ['-e', LOADGEN]);
  t.teardown(() => gen.kill());
  let moved = 0;
  let echoPort = 0;
  const ready = new Promise<void>((resolve) => {
    gen.stdout.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (line.startsWith('echo ')) { echoPort = Number(line.slice(5)); resolve(); }
        if (line.startsWith('moved ')) moved = Number(line.slice(6));
      }
    });
  });
  await ready;
  const link = await call(sc.api, 'POST', '/proxies', { name: 'load', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echoPort}` });
  gen.stdin.write(`${portOf(link.body.listen)}\n`);
  for (let i = 0; i < 60 && moved === 0; i++) await sleep(50);
  t.ok(moved > 0, 'load is flowing');
  const apiMs: number[] = [];
  for (let i = 0; i < 50; i++) {
    let t0 = performance.now();
    const a = await call(sc.api, 'POST', '/proxies/load/toxics', { name: 'lat', type: 'latency', attributes: { latency: 20 } });
    apiMs.push(performance.now() - t0);
    t0 = performance.now();
    const d = await call(sc.api, 'DELETE', '/proxies/load/toxics/lat');
    apiMs.push(performance.now() - t0);
    if (a.status !== 200 || d.status !== 204) t.fail(`add/remove failed: ${a.status} ${d.status}`);
  }
  const before = moved;
  await sleep(300);
  t.ok(moved > before, 'data still flows after 50 add/remove cycles');
  const p99 = quantile(apiMs, 0.99);
  // A hang detector (Toxiproxy's API hangs when a toxic is removed under load). The strict
  // p99 <= 5 ms target is the bench's job: this suite shares two cores with everything else.
  t.ok(p99 < 3000, `API p50 ${quantile(apiMs, 0.5).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms under load (${(moved / 1e6).toFixed(0)} MB moved)`);
  const st = (await call(sc.api, 'GET', '/status')).body;
  t.equal(st.links[0].active_connections, 8);
  // Time from the call to the effect: existing connections reset by a partition.
  const t0 = performance.now();
  await call(sc.api, 'POST', '/proxies/load/toxics', { name: 'cut', type: 'partition', stream: 'both', attributes: { existing: 'reset' } });
  const callMs = performance.now() - t0;
  await sleep(100);
  t.equal((await call(sc.api, 'GET', '/status')).body.links[0].active_connections, 0, `all 8 busy connections reset (call took ${callMs.toFixed(2)} ms)`);
});

/**
 * The API is closed and strict: a token guards every route but /health; foreign Host and Origin headers are refused;
 * numbers are range-checked with 400s that name the field; bandwidth rate 0 is unlimited; a PATCH that cannot listen
 * leaves the proxy as it was and says so.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { call, connect, echoServer, portOf, roundTrip, sidecar } from './helpers.js';
import { loadConfig } from '../../sidecar/src/config.js';

/** node:http, since fetch cannot set Host. */
function raw(base: string, method: string, p: string, headers: Record<string, string>): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: p, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('with a token every route but /health needs it', async (t) => {
  const sc = await sidecar({ api: { host: '127.0.0.1', port: 0, token: 's3cret' } });
  t.teardown(() => sc.close());
  for (const p of ['/proxies', '/version', '/metrics', '/faults', '/status', '/profiles', '/fault-types', '/nowhere']) {
    t.equal((await call(sc.apiUrl, 'GET', p)).status, 401, `GET ${p} without the token: 401`);
  }
  t.equal((await call(sc.apiUrl, 'GET', '/proxies', undefined, { authorization: 'Bearer wrong' })).status, 401, 'wrong token: 401');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies', undefined, { authorization: 'Bearer s3cret' })).status, 200, 'with the token: 200');
  t.equal((await call(sc.apiUrl, 'GET', '/health')).status, 200, '/health needs nothing (probes)');
});

t.test('foreign Host and Origin are refused; loopback names and the allow-list are not', async (t) => {
  const sc = await sidecar({ api: { host: '127.0.0.1', port: 0, allowedHosts: ['sidecar-a.internal', 'relay-*-chaos', '*.svc.cluster.local'] } });
  t.teardown(() => sc.close());
  const port = new URL(sc.apiUrl).port;
  t.equal(await raw(sc.apiUrl, 'GET', '/proxies', { host: `evil.example:${port}` }), 403, 'DNS-rebinding Host refused');
  t.equal(await raw(sc.apiUrl, 'POST', '/reset', { host: 'evil.example' }), 403, 'also for changes');
  for (const h of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `sidecar-a.internal:${port}`, 'SIDECAR-A.internal']) {
    t.equal(await raw(sc.apiUrl, 'GET', '/proxies', { host: h }), 200, `Host ${h} allowed`);
  }
  for (const h of ['relay-0-chaos:8474', 'relay-12-chaos', 'relay-0-chaos.chaos.svc.cluster.local:8474']) {
    t.equal(await raw(sc.apiUrl, 'GET', '/proxies', { host: h }), 200, `Host ${h} allowed by a pattern`);
  }
  for (const h of ['relay-0-chaos.evil.example', 'xrelay-0-chaosx', 'svc.cluster.local.evil.example']) {
    t.equal(await raw(sc.apiUrl, 'GET', '/proxies', { host: h }), 403, `Host ${h} refused: patterns are anchored`);
  }
  t.equal(await raw(sc.apiUrl, 'GET', '/health', { host: '10.1.2.3:8474' }), 200, '/health answers a probe by pod address');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies', undefined, { origin: 'http://evil.example' })).status, 403, 'foreign Origin refused');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies', undefined, { origin: 'null' })).status, 403, 'opaque Origin refused');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies', undefined, { origin: 'http://localhost:3000' })).status, 200, 'loopback Origin allowed');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies', undefined, { origin: 'https://sidecar-a.internal' })).status, 200, 'allow-listed Origin allowed');

  const tok = await sidecar({ api: { host: '127.0.0.1', port: 0, token: 's3cret' } });
  t.teardown(() => tok.close());
  t.equal((await call(tok.apiUrl, 'GET', '/proxies', undefined, { origin: 'http://evil.example', authorization: 'Bearer s3cret' })).status, 403, 'a token does not make a foreign Origin acceptable');

  const cfg = loadConfig(undefined, { allowedHosts: 'A.example, b.example' }, {});
  t.same(cfg.api.allowedHosts, ['a.example', 'b.example'], '--allowed-hosts');
  t.same(loadConfig(undefined, {}, { CHAOS_SIDECAR_ALLOWED_HOSTS: 'c.example' }).api.allowedHosts, ['c.example'], 'CHAOS_SIDECAR_ALLOWED_HOSTS');
  t.throws(() => loadConfig(undefined, { allowedHosts: 'bad host/' }, {}), /--allowed-hosts: expected host names/);
});

t.test('numbers are range-checked: clear 400s naming the field', async (t) => {
  const sc = await sidecar({ links: [{ name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:1', protocol: 'tcp', enabled: true }] });
  t.teardown(() => sc.close());
  const add = (body: object) => call(sc.apiUrl, 'POST', '/proxies/p/toxics', body);
  const cases: Array<[string, object, RegExp]> = [
    ['duration 2^31 ms (a timer that would fire after 1 ms)', { type: 'latency', duration: 2 ** 31 }, /duration.*at most 2147483647/],
    ['duration "25d"-like string over the limit', { type: 'latency', duration: '2147484s' }, /duration.*at most/],
    ['negative duration', { type: 'latency', duration: -5 }, /duration/],
    ['zero duration', { type: 'latency', duration: 0 }, /duration/],
    ['duration not a duration', { type: 'latency', duration: 'soon' }, /duration/],
    ['latency 2^31 ms', { type: 'latency', attributes: { latency: 2 ** 31 } }, /attribute "latency".*at most/],
    ['latency negative', { type: 'latency', attributes: { latency: -1 } }, /attribute "latency"/],
    ['jitter as a huge string', { type: 'latency', attributes: { jitter: '9999999999999ms' } }, /attribute "jitter"/],
    ['timeout 2^31', { type: 'timeout', attributes: { timeout: 2 ** 31 } }, /attribute "timeout"/],
    ['slow_close delay 2^31', { type: 'slow_close', attributes: { delay: 2 ** 31 } }, /attribute "delay"/],
    ['reset_peer timeout 1e300', { type: 'reset_peer', attributes: { timeout: 1e300 } }, /attribute "timeout"/],
    ['slicer delay over 2^31 ms in µs', { type: 'slicer', attributes: { delay: 2 ** 31 * 1000 } }, /attribute "delay"/],
    ['toxicity 2', { type: 'latency', toxicity: 2 }, /toxicity/],
    ['toxicity a string', { type: 'latency', toxicity: 'all' }, /toxicity/],
    ['rate negative', { type: 'bandwidth', attributes: { rate: -10 } }, /attribute "rate"/],
    ['probability 1.5', { type: 'loss', attributes: { probability: 1.5 } }, /attribute "probability"/],
  ];
  for (const [what, body, re] of cases) {
    const r = await add(body);
    t.equal(r.status, 400, `${what}: 400`);
    t.match(r.body?.error ?? '', re, `${what}: ${r.body?.error}`);
  }
  t.equal((await call(sc.apiUrl, 'GET', '/proxies/p/toxics')).body.length, 0, 'nothing was added');
  t.equal((await call(sc.apiUrl, 'GET', '/proxies/%E0%A4%A')).status, 400, 'a malformed path escape is a 400, not a 500');
});

t.test('bandwidth rate 0 means unlimited, as in Toxiproxy', async (t) => {
  const echo = await echoServer();
  const sc = await sidecar({ links: [{ name: 'e', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(async () => {
    await sc.close();
    await echo.close();
  });
  t.equal((await call(sc.apiUrl, 'POST', '/proxies/e/toxics', { type: 'bandwidth', attributes: { rate: 0 } })).status, 200);
  const s = await connect(portOf(sc.sidecar.links.get('e')!.spec().listen));
  const parts: Buffer[] = [];
  s.on('data', (d) => parts.push(d));
  const sent = Buffer.alloc(100_000, 7);
  const ms = await roundTrip(s, sent, 5000);
  t.ok(Buffer.concat(parts).equals(sent), `100 KB passed unchanged in ${ms.toFixed(0)} ms`);
  s.destroy();
});

t.test('a PATCH that cannot listen leaves the proxy as it was, listening, and says so', async (t) => {
  const echo = await echoServer();
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const taken = (blocker.address() as net.AddressInfo).port;
  const sc = await sidecar({ links: [{ name: 'e', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(async () => {
    await sc.close();
    await echo.close();
    blocker.close();
  });
  const before = (await call(sc.apiUrl, 'GET', '/proxies/e')).body;
  const r = await call(sc.apiUrl, 'PATCH', '/proxies/e', { listen: `127.0.0.1:${taken}` });
  t.equal(r.status, 409, `refused: ${r.body?.error}`);
  t.match(r.body?.error ?? '', /keeps its previous settings/);
  const after = (await call(sc.apiUrl, 'GET', '/proxies/e')).body;
  t.same([after.listen, after.enabled], [before.listen, true], 'reports the old address, enabled');
  const s = await connect(portOf(after.listen));
  await roundTrip(s, Buffer.from('still listening'));
  t.pass('and really listens there');
  s.destroy();
});

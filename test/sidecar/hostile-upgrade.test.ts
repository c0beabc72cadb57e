/** Hostile input the sidecar carries or serves: malformed WebSocket upgrades and profile names that try to leave the profiles directory. */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import { call, portOf, sidecar, sleep, spawnSidecar } from './helpers.js';

/** Sends raw request bytes; resolves with what came back before the socket closed (or 2 s passed). */
async function raw(port: number, request: string): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  s.write(request);
  let out = '';
  s.on('data', (d) => (out += d.toString('latin1')));
  await Promise.race([once(s, 'close'), sleep(2000)]);
  s.destroy();
  return out;
}

const upgrade = (target: string, extra: string) =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

t.test('malformed upgrades get a 400 and never kill the sidecar or dial the upstream', async (t) => {
  // The sidecar as a child process: a crash must show as an exit, not as a failed test runner.
  const upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(upstream, 'listening');
  let dialled = 0;
  upstream.on('connection', () => dialled++);
  const upPort = (upstream.address() as net.AddressInfo).port;
  const sc = await spawnSidecar(['--api-port', '0', '--log-level', 'warn']);
  let exited: number | null = null;
  sc.proc.on('exit', (code) => (exited = code ?? -1));
  t.teardown(async () => {
    await sc.stop();
    upstream.close();
  });
  const api = sc.api;
  const made = await call(api, 'POST', '/proxies', { name: 'peer-b', listen: '127.0.0.1:0', upstream: `127.0.0.1:${upPort}`, protocol: 'ws' });
  t.equal(made.status, 201, made.text);
  const port = portOf(made.body.listen);

  const cases: Array<[string, string, string]> = [
    ['duplicate subprotocols', '/', 'Sec-WebSocket-Protocol: a, a\r\n'],
    ['invalid subprotocol token', '/', 'Sec-WebSocket-Protocol: a b, "c"\r\n'],
    ['absolute-form target', 'http://evil.example/x', ''],
    ['asterisk target', '*', ''],
  ];
  for (const [what, target, extra] of cases) {
    const reply = await raw(port, upgrade(target, extra));
    t.match(reply, /^HTTP\/1\.1 400/, `${what}: 400`);
  }
  const noKey = await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  t.match(noKey, /^HTTP\/1\.1 400/, 'missing Sec-WebSocket-Key: 400');
  t.equal(dialled, 0, 'no malformed handshake reached the upstream');
  t.equal(exited, null, 'the sidecar is still running');
  const h0 = performance.now();
  t.equal((await call(api, 'GET', '/health')).status, 200, `/health answers (${(performance.now() - h0).toFixed(1)} ms)`);
  const ok = await raw(port, upgrade('/', 'Sec-WebSocket-Protocol: nostr\r\n'));
  t.match(ok, /^HTTP\/1\.1 101/, 'a well-formed upgrade still goes through');
  t.equal(dialled, 1);
});

t.test('profile names cannot leave the profiles directory nor leak file contents', async (t) => {
  const sc = await sidecar();
  t.teardown(() => sc.close());
  for (const name of ['%2Fetc%2Fshadow', '%2Fetc%2Fpasswd', '..%2F..%2F..%2Fetc%2Fpasswd', '%2Fdev%2Fzero', 'x.yaml', '..', '.%2E']) {
    const t0 = performance.now();
    const r = await call(sc.apiUrl, 'GET', `/profiles/${name}`);
    // fetch itself resolves "/profiles/.." to "/" (a 404 for an unknown route); every name that arrives is a 400.
    t.equal(r.status, name === '..' || name === '.%2E' ? 404 : 400, `GET /profiles/${name} → ${r.status} in ${(performance.now() - t0).toFixed(0)} ms: ${r.text}`);
    t.notMatch(r.text, /root:/, 'no file contents in the answer');
    const p = await call(sc.apiUrl, 'POST', '/profiles', { name: decodeURIComponent(name) });
    t.equal(p.status, 400, `POST /profiles {name: ${decodeURIComponent(name)}} → ${p.status}`);
    t.notMatch(p.text, /root:/);
  }
  t.equal((await call(sc.apiUrl, 'GET', '/profiles/latency')).status, 200, 'a real profile still loads by name');
  t.equal((await call(sc.apiUrl, 'GET', '/profiles/no-such-profile')).status, 404, 'a well-formed unknown name is a 404');
});

// The console server's API against a real three-relay cluster: token on every /api/ route, Host and Origin rules,
// hostile bodies refused with clear 4xx answers, the SSE snapshot stream (and its bound), one fault added and removed
// through the API and seen on the sidecar, a profile applied and healed, reports listed and served sandboxed.
import t from 'tap';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { paths } from '../../cluster/src/layout.js';
import { join } from 'node:path';
import { directEndpoints } from '../../cluster/src/layout.js';
import { listFaults } from '../../cluster/src/chaos/sidecar-client.js';
import { buildCluster, REPO_ROOT } from '../cluster/helpers.js';
import { eventually, readEvents, startTestConsole, type TestConsole } from './helpers.js';

t.setTimeout(300_000);
buildCluster();

let c: TestConsole;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

/** node:http rather than fetch: the test must set Host, Origin and Sec-Fetch-Site as a hostile browser would. */
function call(method: string, path: string, o: { token?: string | null; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const url = new URL(path, c.url);
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  const token = o.token === undefined ? c.token : o.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (o.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method, headers, timeout: 20_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // Not JSON (the page, a report): the test reads text.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 20 s`)));
    req.end(o.body);
  });
}

const post = (path: string, body: unknown, o: { token?: string | null; headers?: Record<string, string> } = {}) => call('POST', path, { ...o, body: typeof body === 'string' ? body : JSON.stringify(body) });

t.before(async () => {
  c = await startTestConsole(3, { maxStreams: 2 });
});
t.teardown(async () => {
  await c?.stop();
});

t.test('/health and the page need no token; every /api/ route does, reads included', async (t) => {
  t.equal((await call('GET', '/health', { token: null })).status, 200);
  const page = await call('GET', '/', { token: null });
  t.equal(page.status, 200);
  t.match(page.text, /<script type="module" src="\/app.js">/);
  t.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/, 'never framed by another page');
  for (const path of ['/api/meta', '/api/snapshot', '/api/events', '/api/reports', '/api/experiment']) {
    const none = await call('GET', path, { token: null });
    t.equal(none.status, 401, `${path} without a token`);
    t.match(none.json.error, /token required/);
    t.equal((await call('GET', path, { token: 'test-token-0123456789abcdeX' })).status, 401, `${path} with a wrong token`);
  }
  t.equal((await post('/api/heal', {}, { token: null })).status, 401, 'no heal without the token');
  t.equal((await call('GET', '/api/meta', { token: null, headers: { 'x-console-token': c.token } })).status, 200, 'X-Console-Token works too');
});

t.test('Host and Origin: DNS rebinding and other pages are refused, the own origin is not', async (t) => {
  const rebound = await call('GET', '/api/snapshot', { headers: { host: 'attacker.example:80' } });
  t.equal(rebound.status, 403);
  t.match(rebound.json.error, /Host attacker.example/);
  t.equal((await call('GET', '/', { token: null, headers: { host: 'attacker.example' } })).status, 403, 'the page too');
  t.equal((await call('GET', '/health', { token: null, headers: { host: 'attacker.example' } })).status, 200, '/health answers probes by any name');
  const port = new URL(c.url).port;
  for (const origin of ['http://attacker.example', `http://127.0.0.1:${Number(port) + 1}`, `https://127.0.0.1:${port}`, 'null']) {
    const r = await post('/api/heal', {}, { headers: { origin } });
    t.equal(r.status, 403, `POST from Origin ${origin}`);
    t.match(r.json.error, /other web pages are refused/);
  }
  const site = await call('GET', '/api/snapshot', { headers: { 'sec-fetch-site': 'cross-site' } });
  t.equal(site.status, 403, 'a cross-site <img>/<script> request');
  const own = await post('/api/heal', {}, { headers: { origin: `http://localhost:${port}`, 'sec-fetch-site': 'same-origin' } });
  t.equal(own.status, 200, `the console's own origin (${own.text.trim()})`);
  const form = await post('/api/heal', '{}', { headers: { origin: `http://127.0.0.1:${port}`, 'content-type': 'text/plain' } });
  t.equal(form.status, 415, 'a browser body must be application/json (no CORS-simple POST)');
  t.equal((await post('/api/heal', '{}', { headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 200, 'curl -d (form type, no Origin) works');
});

t.test('hostile bodies: 4xx with a message naming what is wrong, nothing applied', async (t) => {
  const cases: Array<[string, string | unknown, number, RegExp]> = [
    ['/api/partition', '{not json', 400, /not valid JSON/],
    ['/api/partition', [], 400, /JSON object/],
    ['/api/partition', 'null', 400, /JSON object/],
    ['/api/partition', { shape: 'isolate', extra: 1 }, 400, /unknown field: extra/],
    ['/api/partition', { shape: 'pentagon' }, 400, /shape must be one of/],
    ['/api/partition', {}, 400, /missing required field: shape/],
    ['/api/partition', { shape: 'isolate', node: 'z' }, 400, /node must be one of a, b, c/],
    ['/api/partition', { shape: 'groups', groups: [['a', 'b'], ['b', 'c']] }, 400, /two groups/],
    ['/api/partition', { shape: 'groups', groups: [['a', 'b', 'c']] }, 400, /groups must be a list of 2/],
    ['/api/partition', { shape: 'groups' }, 400, /needs --groups/],
    ['/api/partition', { shape: 'majorities-ring' }, 400, /at least four nodes/],
    ['/api/partition', { shape: 'halves', durationMs: -5 }, 400, /durationMs must be a whole number/],
    ['/api/partition', { shape: 'halves', oneWay: 'yes' }, 400, /oneWay must be true or false/],
    ['/api/profile', { profile: '../../etc/passwd' }, 400, /profile must be one of/],
    ['/api/profile', { profile: 'latency', nodes: ['a', 'a'] }, 400, /names a node twice/],
    ['/api/profile', { profile: 'latency', nodes: 'a' }, 400, /nodes must be a list/],
    ['/api/fault', { node: 'a', link: 'peer-zz', type: 'latency' }, 400, /link must be one of node a's links/],
    ['/api/fault', { node: 'a', link: 'peer-b' }, 400, /missing required field: type/],
    ['/api/fault', { node: 'a', link: 'peer-b', type: 'no-such-fault' }, 400, /unknown toxic type/],
    ['/api/fault', { node: 'a', link: 'peer-b', type: 'latency', attributes: { latency: 'x'.repeat(300) } }, 400, /at most 200 characters/],
    ['/api/fault', { node: 'a', link: 'peer-b', type: 'latency', attributes: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 1])) }, 400, /at most 16/],
    ['/api/fault', { node: 'a', link: 'peer-b', type: 'latency', name: 'x/../y' }, 400, /name must be a name/],
    ['/api/fault', { node: 'a', link: 'peer-b', type: 'latency', toxicity: 7 }, 400, /toxicity/],
    ['/api/fault/remove', { node: 'a', link: 'peer-b', name: 'not-there' }, 400, /HTTP 404/],
    ['/api/experiment', { profile: 'rm -rf' }, 400, /profile must be one of/],
    ['/api/experiment', { profile: 'latency', shape: 'halves' }, 400, /shape goes with profile partition/],
    ['/api/experiment', { profile: 'partition', holdMs: 10 }, 400, /holdMs/],
    ['/api/heal', { please: true }, 400, /unknown field/],
    ['/api/nope', {}, 404, /no such endpoint/],
  ];
  for (const [path, body, status, message] of cases) {
    const r = await post(path, body);
    t.equal(r.status, status, `${path} ${typeof body === 'string' ? body : JSON.stringify(body).slice(0, 80)}`);
    t.match(r.json.error, message);
  }
  const big = await post('/api/partition', JSON.stringify({ shape: 'halves', pad: 'x'.repeat(20_000) }));
  t.equal(big.status, 413, 'a body over 16 KiB');
  t.equal((await call('DELETE', '/api/heal')).status, 405);
  for (const n of c.cluster.state.layout.nodes) t.same(await listFaults(directEndpoints(c.cluster.state.layout, n).sidecarUrl), [], `nothing applied on sidecar-${n.name}`);
});

t.test('the SSE stream: a snapshot of every relay and link, pushed again about once a second; streams are bounded', async (t) => {
  const res = await fetch(`${c.url}/api/events`, { headers: { authorization: `Bearer ${c.token}` } });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /text\/event-stream/);
  const started = Date.now();
  const events = await readEvents(res, 3, 30_000);
  t.equal(events.length, 3, 'three snapshots');
  t.ok(Date.now() - started >= 1500, `pushed at the poll rate, not as fast as possible (${Date.now() - started} ms for 3)`);
  const { snapshot, experiment } = events[2]!.data as { snapshot: { nodes: Array<Record<string, unknown>> }; experiment: { running: boolean } };
  t.same(snapshot.nodes.map((n) => n.node), ['a', 'b', 'c']);
  for (const n of snapshot.nodes) {
    t.equal(n.mode, 'normal', `relay-${n.node} mode`);
    t.equal(n.partitioned, false);
    t.equal(typeof n.eventsPerSecond, 'number');
    t.same((n.links as Array<{ name: string }>).map((l) => l.name).sort(), ['peer-' + ['a', 'b', 'c'].filter((x) => x !== n.node).join(',peer-'), 'postgres', 'redis'].join(',').split(',').sort());
    t.same((n.peers as Array<{ node: string }>).map((p) => p.node).sort(), ['a', 'b', 'c'].filter((x) => x !== n.node), 'peers named by node');
  }
  t.equal(experiment.running, false);

  const open = await Promise.all([1, 2].map(() => fetch(`${c.url}/api/events`, { headers: { authorization: `Bearer ${c.token}` } })));
  t.same(open.map((r) => r.status), [200, 200]);
  const third = await call('GET', '/api/events');
  t.equal(third.status, 503, 'a third stream is refused (bound 2)');
  t.match(third.json.error, /too many live streams/);
  for (const r of open) await r.body!.cancel();
});

t.test('one fault on one link: added through the API, seen with its time left, removed', async (t) => {
  const layout = c.cluster.state.layout;
  const sidecarA = directEndpoints(layout, layout.nodes[0]!).sidecarUrl;
  const added = await post('/api/fault', { node: 'a', link: 'peer-b', type: 'latency', name: 'slow-ab', attributes: { latency: 50 }, durationMs: 120_000 });
  t.equal(added.status, 200, added.text);
  t.same((await listFaults(sidecarA)).map((f) => `${f.link}/${f.name}/${f.type}`), ['peer-b/slow-ab/latency'], 'on sidecar-a itself');
  const snap = (await call('GET', '/api/snapshot')).json as { snapshot: { nodes: Array<{ node: string; links: Array<{ name: string; faults: Array<{ name: string; remainingMs: number }> }> }> } };
  const fault = snap.snapshot.nodes[0]!.links.find((l) => l.name === 'peer-b')!.faults[0]!;
  t.equal(fault.name, 'slow-ab');
  t.ok(fault.remainingMs > 60_000 && fault.remainingMs <= 120_000, `time left ${fault.remainingMs} ms`);
  const removed = await post('/api/fault/remove', { node: 'a', link: 'peer-b', name: 'slow-ab' });
  t.equal(removed.status, 200, removed.text);
  t.same(await listFaults(sidecarA), []);
});

t.test('a profile on chosen nodes, then heal everything', async (t) => {
  const layout = c.cluster.state.layout;
  const applied = await post('/api/profile', { profile: 'latency', nodes: ['b'] });
  t.equal(applied.status, 200, applied.text);
  const url = (i: number) => directEndpoints(layout, layout.nodes[i]!).sidecarUrl;
  t.ok((await listFaults(url(1))).length > 0, 'faults on sidecar-b');
  t.same(await listFaults(url(0)), [], 'none on sidecar-a');
  const healed = await post('/api/heal', {});
  t.same(healed.json.healed, ['sidecar-a', 'sidecar-b', 'sidecar-c']);
  await eventually('sidecar-b clean', async () => (await listFaults(url(1))).length === 0, 10_000);
});

t.test('past reports: listed newest first, served only by listed name, in a sandbox', async (t) => {
  writeFileSync(join(c.reportsDir, 'chaos-latency-2026-01-01T00-00-00.html'), '<html><body><h1>old run</h1></body></html>');
  writeFileSync(join(c.reportsDir, 'notes.txt'), 'not a report');
  const list = await call('GET', '/api/reports');
  t.same((list.json.reports as Array<{ name: string }>).map((r) => r.name), ['chaos-latency-2026-01-01T00-00-00.html']);
  const one = await call('GET', '/api/reports/chaos-latency-2026-01-01T00-00-00.html');
  t.equal(one.status, 200);
  t.match(one.text, /old run/);
  t.match(String(one.headers['content-security-policy']), /^sandbox/);
  t.equal((await call('GET', '/api/reports/..%2F..%2Fetc%2Fpasswd.html')).status, 400, 'no path');
  t.equal((await call('GET', '/api/reports/notes.txt')).status, 400);
  t.equal((await call('GET', '/api/reports/%E0%A4%A.html')).status, 400, 'bad URL encoding');
  t.equal((await call('GET', '/api/reports/missing.html')).status, 404);
});

t.test('`make console`: the CLI prints the URL with the token in the fragment, writes the token file, stops on SIGINT', async (t) => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'cluster/dist/cli/console.js'), '--dir', c.cluster.dir, '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await eventually('the console URL', async () => /console: http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{48}\n/.test(out), 30_000);
  const [, base, token] = /console: (http:\/\/127\.0\.0\.1:\d+)\/#token=([0-9a-f]+)/.exec(out)!;
  t.equal(readFileSync(join(paths({ dir: c.cluster.dir }).state, '../console.token'), 'utf8').trim(), token, 'token file for curl');
  const meta = await fetch(`${base}/api/meta`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(meta.status, 200);
  t.same(((await meta.json()) as { nodes: Array<{ name: string }> }).nodes.map((n) => n.name), ['a', 'b', 'c']);
  t.equal((await fetch(`${base}/api/meta`)).status, 401);
  child.kill('SIGINT');
  t.equal(await exited, 0, out);
});

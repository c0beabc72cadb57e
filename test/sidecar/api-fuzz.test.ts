/**
 * A seeded fuzz of every API route with hostile input: wrong types, huge and negative numbers, traversal paths,
 * broken and hostile YAML, deep JSON. After every batch the sidecar (a child process) must be alive and answer
 * /health within a generous bound; no request may get a 5xx; at the end, with every proxy deleted, it must hold no
 * more sockets than it started with. FUZZ_SEED=n replays a run; FUZZ_N sets the number of requests.
 */
import t from 'tap';
import http from 'node:http';
import fs from 'node:fs';
import { Gen, seededRandom } from './fuzz.js';
import { sleep, spawnSidecar } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const N = Number(process.env.FUZZ_N ?? 600);
const TYPES = ['latency', 'bandwidth', 'slow_close', 'timeout', 'reset_peer', 'slicer', 'limit_data', 'loss', 'drop', 'blackhole',
  'partition', 'corrupt', 'duplicate', 'reorder', 'pg_error', 'redis_error', 'nope', ''];

interface Res {
  status: number;
  body: string;
}

/** One request on its own connection (agent: false, connection: close), so sockets can be counted afterwards. */
function request(base: string, method: string, path: string, body?: string, contentType?: string): Promise<Res> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { connection: 'close' };
    if (body !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      // Node's client frames a GET/DELETE body only with an explicit length (else the bytes read as a next request).
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d.length < 10_000 ? d : ''));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function sockets(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

t.test(`every API route under hostile input (seed ${SEED}, ${N} requests)`, async (t) => {
  const sc = await spawnSidecar(['--api-port', '0', '--log-level', 'error', '--max-active-faults', '20']);
  t.teardown(async () => {
    const killer = setTimeout(() => sc.proc.kill('SIGKILL'), 5000);
    await sc.stop();
    clearTimeout(killer);
  });
  const pid = sc.proc.pid!;
  let stderr = '';
  sc.proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  await sleep(200);
  const baseline = sockets(pid);
  const g = new Gen(seededRandom(SEED));
  const names = () => (g.chance(0.7) ? `p${g.int(4)}` : encodeURIComponent(g.string()).slice(0, 200));
  const toxicNames = () => (g.chance(0.7) ? `f${g.int(5)}` : encodeURIComponent(g.string()).slice(0, 200));
  const json = (v: unknown) => (g.chance(0.05) ? '{"broken":' : g.chance(0.03) ? g.deepText() : JSON.stringify(v) ?? 'null');
  const fiveHundreds: string[] = [];
  let done = 0;
  for (let i = 0; i < N; i++) {
    const route = g.int(14);
    let method = g.pick(['GET', 'POST', 'PATCH', 'DELETE', 'PUT']);
    let path = '/';
    let body: string | undefined;
    let type: string | undefined;
    switch (route) {
      case 0: path = '/proxies'; body = json(g.proxy()); break;
      case 1: path = `/proxies/${names()}`; body = json(g.proxy()); break;
      case 2: path = `/proxies/${names()}/toxics`; method = g.chance(0.8) ? 'POST' : method; body = json(g.toxic(TYPES)); break;
      case 3: path = `/proxies/${names()}/toxics/${toxicNames()}`; body = json(g.toxic(TYPES)); break;
      case 4: path = '/populate'; method = 'POST'; body = json(g.chance(0.7) ? [g.proxy(), g.proxy()] : g.value()); break;
      case 5: path = '/reset'; method = g.chance(0.3) ? 'POST' : method; break;
      case 6: path = '/profiles'; if (g.chance(0.5)) { body = g.yaml(); type = 'application/yaml'; } else body = json({ name: g.chance(0.5) ? g.string() : g.value() }); break;
      case 7: path = `/profiles/${encodeURIComponent(g.string()).slice(0, 300)}`; break;
      case 8: path = g.pick(['/faults', '/status', '/health', '/fault-types', '/metrics', '/version']); break;
      case 9: path = `/${g.pick(['proxies', 'profiles', 'faults'])}/${g.pick(['..', '%2e%2e', '%2F', '.', '%00', '%E0%A4%A'])}/${g.pick(['etc', 'x', ''])}`; break;
      case 10: path = `/proxies/${names()}/toxics`; method = 'GET'; break;
      case 11: path = `/proxies/${names()}/toxics/${toxicNames()}`; method = 'PATCH'; body = json({ attributes: g.object(), toxicity: g.number(), duration: g.number() }); break;
      case 12: path = '/proxies/p0/toxics'; method = 'POST'; body = json({ type: g.pick(TYPES), attributes: { [g.pick(['latency', 'rate', 'timeout', 'bytes', 'delay'])]: g.number() }, duration: g.number() }); break;
      default: path = `/${encodeURIComponent(g.string()).slice(0, 100)}?${'q='.repeat(g.int(50))}`; break;
    }
    if (method === 'GET' || method === 'DELETE') body = g.chance(0.1) ? body : undefined;
    let res: Res;
    try {
      res = await request(sc.api, method, path, body, type);
    } catch (err) {
      t.fail(`request ${i} ${method} ${path.slice(0, 80)} ${body?.slice(0, 200)}: ${(err as Error).message}; sidecar stderr: ${stderr}`);
      break;
    }
    if (res.status >= 500) fiveHundreds.push(`${method} ${path.slice(0, 80)} ${body?.slice(0, 120)} -> ${res.status} ${res.body.slice(0, 200)}`);
    done++;
    if (i % 50 === 49) {
      t.equal(sc.proc.exitCode, null, `alive after ${i + 1} requests`);
      const h = await request(sc.api, 'GET', '/health');
      t.equal(h.status, 200, `/health answers after ${i + 1} requests`);
    }
  }
  t.equal(done, N, 'every request got an answer');
  t.same(fiveHundreds, [], 'no 5xx: every hostile input got a clear 4xx');
  // Leave nothing behind: every proxy deleted, then the process holds what it held at the start.
  const list = JSON.parse((await request(sc.api, 'GET', '/proxies')).body) as Record<string, unknown>;
  for (const name of Object.keys(list)) await request(sc.api, 'DELETE', `/proxies/${encodeURIComponent(name)}`);
  await request(sc.api, 'POST', '/reset');
  let now = sockets(pid);
  for (let i = 0; i < 50 && now > baseline; i++) {
    await sleep(100);
    now = sockets(pid);
  }
  t.ok(now <= baseline, `sockets held: ${now} at the end, ${baseline} at the start`);
  t.equal(sc.proc.exitCode, null, 'still running');
});

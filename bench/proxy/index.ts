/**
 * Proxy benchmark: direct vs through the sidecar (no faults) vs a bare Node
 * socket.pipe() proxy (the floor for a Node proxy) vs through HAProxy (plain TCP
 * pass-through, when installed), in one run, on loopback only.
 *
 *   redis-benchmark GET, 50 clients, with and without -P 16
 *   pgbench select-only
 *   64-byte ping-pong added latency (p50/p99)
 *   fault fidelity: latency 50 ms asked -> measured; loss 10 % asked -> measured over 10,000 ws messages
 *   time from API call to effect (p50/p99)
 *
 * Run: npx tsx bench/proxy/index.ts   (needs `npx tsc -b` first: the sidecar runs as its own process)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { WebSocket, WebSocketServer } from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'sidecar/dist/main.js');
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 1 : 3;
const children: ChildProcess[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-bench-'));

function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function api(base: string, method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(base + p, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// ---- targets ---------------------------------------------------------------

interface Target {
  name: string;
  redis: number;
  pg: number;
}

async function startSidecar(echoPort: number, wsPort: number): Promise<{ api: string; ports: Record<string, number> }> {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} missing: run \`npx tsc -b\` first`);
  const cfg = path.join(tmp, 'sidecar.yaml');
  fs.writeFileSync(cfg, [
    'node: bench',
    'seed: 1',
    'links:',
    '  - { name: redis, listen: "127.0.0.1:0", upstream: "127.0.0.1:6379" }',
    '  - { name: postgres, listen: "127.0.0.1:0", upstream: "127.0.0.1:5432" }',
    `  - { name: echo, listen: "127.0.0.1:0", upstream: "127.0.0.1:${echoPort}" }`,
    `  - { name: peer-b, listen: "127.0.0.1:0", upstream: "127.0.0.1:${wsPort}", protocol: ws }`,
  ].join('\n'));
  const proc = spawn(process.execPath, [MAIN, 'start', '--config', cfg, '--api-port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /api=(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.on('exit', (c) => reject(new Error(`sidecar exited with ${c}`)));
  });
  const proxies = await api(url, 'GET', '/proxies');
  const ports: Record<string, number> = {};
  for (const [k, v] of Object.entries(proxies)) ports[k] = Number((v as { listen: string }).listen.split(':').pop());
  return { api: url, ports };
}

async function startHaproxy(): Promise<Target | null> {
  if (spawnSync('sh', ['-c', 'command -v haproxy']).status !== 0) return null;
  const redis = await freePort();
  const pgPort = await freePort();
  const cfg = path.join(tmp, 'haproxy.cfg');
  fs.writeFileSync(cfg, [
    'global', '  maxconn 4096',
    'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 60s', '  timeout server 60s',
    `listen redis`, `  bind 127.0.0.1:${redis}`, '  server r 127.0.0.1:6379',
    `listen postgres`, `  bind 127.0.0.1:${pgPort}`, '  server p 127.0.0.1:5432',
  ].join('\n') + '\n');
  const proc = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proc);
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => net.connect(redis, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); r(true); }).on('error', () => r(false)));
    if (ok) return { name: 'haproxy', redis, pg: pgPort };
    await sleep(100);
  }
  throw new Error('haproxy did not start');
}

/**
 * The floor for any Node proxy: accept, dial, socket.pipe() both ways, Node's defaults, nothing else. The sidecar's
 * fast path should cost no more than this; the gap from here to HAProxy is Node's, not the sidecar's.
 */
async function startNodePipe(): Promise<Target> {
  const redis = await freePort();
  const pgPort = await freePort();
  const script = `
    const net = require('node:net');
    for (const [listen, up] of [[${redis}, 6379], [${pgPort}, 5432]]) {
      net.createServer({ noDelay: true }, (c) => {
        const u = net.connect({ port: up, host: '127.0.0.1', noDelay: true });
        c.pipe(u); u.pipe(c);
        c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
      }).listen(listen, '127.0.0.1', () => process.stdout.write('ready '));
    }`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.split('ready').length > 2) resolve();
    });
    proc.on('exit', (c) => reject(new Error(`node pipe proxy exited with ${c}`)));
  });
  return { name: 'node-pipe', redis, pg: pgPort };
}

// ---- throughput ------------------------------------------------------------

function redisBench(port: number, pipeline: number): number {
  const n = QUICK ? 20000 : pipeline > 1 ? 200000 : 50000;
  const r = spawnSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-c', '50', '-n', String(n), '-t', 'get', '-P', String(pipeline), '-q', '--csv'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-benchmark failed: ${r.stderr}`);
  const m = /"GET","([\d.]+)"/.exec(r.stdout);
  if (!m) throw new Error(`cannot parse redis-benchmark output: ${r.stdout}`);
  return Number(m[1]);
}

function pgBench(port: number): number {
  const r = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-S', '-n', '-c', '8', '-j', '2', '-T', QUICK ? '2' : '3', 'sidecar_bench'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgbench failed: ${r.stderr}`);
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  if (!m) throw new Error(`cannot parse pgbench output: ${r.stdout}`);
  return Number(m[1]);
}

async function preparePg(): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await c.connect();
  const exists = await c.query("select 1 from pg_database where datname = 'sidecar_bench'");
  if (exists.rowCount === 0) await c.query('create database sidecar_bench');
  await c.end();
  const r = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-i', '-s', '1', '-q', 'sidecar_bench'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
}

// ---- latency ---------------------------------------------------------------

async function echoServer(): Promise<number> {
  const s = net.createServer((c) => { c.setNoDelay(true); c.on('error', () => {}); c.pipe(c); }).listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as net.AddressInfo).port;
}

async function pingPong(port: number, n: number): Promise<number[]> {
  const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(s, 'connect');
  const msg = Buffer.alloc(64, 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    let got = 0;
    await new Promise<void>((resolve) => {
      const on = (d: Buffer) => {
        got += d.length;
        if (got >= 64) {
          s.off('data', on);
          resolve();
        }
      };
      s.on('data', on);
      s.write(msg);
    });
    out.push(performance.now() - t0);
  }
  s.destroy();
  return out;
}

async function wsEcho(): Promise<number> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
  return (wss.address() as net.AddressInfo).port;
}

async function measureLoss(port: number, n: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await once(ws, 'open');
  let got = 0;
  ws.on('message', () => got++);
  const t0 = Date.now();
  for (let i = 0; i < n; i++) ws.send(`m${i}`);
  // Done when the count has been stable for a second (and something came back), or after 30 s.
  let last = -1;
  while ((got !== last || got === 0) && Date.now() - t0 < 30_000) {
    last = got;
    await sleep(1000);
  }
  ws.close();
  return 1 - got / n;
}

async function callToEffect(apiUrl: string, echoPort: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port: echoPort, host: '127.0.0.1', noDelay: true });
    await once(s, 'connect');
    s.write('x');
    await once(s, 'data');
    const reset = new Promise<number>((resolve) => s.on('error', () => resolve(performance.now())));
    const t0 = performance.now();
    await Promise.all([
      api(apiUrl, 'POST', '/proxies/echo/toxics', { name: 'cut', type: 'partition', stream: 'both', attributes: { existing: 'reset' } }),
      reset.then((t) => out.push(t - t0)),
    ]);
    await api(apiUrl, 'DELETE', '/proxies/echo/toxics/cut');
  }
  return out;
}

// ---- main ------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`# proxy bench (${os.cpus().length} CPUs, node ${process.version}${QUICK ? ', quick mode' : ''})`);
  const echoPort = await echoServer();
  const wsPort = await wsEcho();
  const sc = await startSidecar(echoPort, wsPort);
  const haproxy = await startHaproxy();
  if (!haproxy) console.log('haproxy not installed: its column is skipped (apt-get install -y haproxy)');
  await preparePg();
  const targets: Target[] = [
    { name: 'direct', redis: 6379, pg: 5432 },
    { name: 'sidecar', redis: sc.ports.redis!, pg: sc.ports.postgres! },
    await startNodePipe(),
    ...(haproxy ? [haproxy] : []),
  ];

  // Targets are measured in turns, ROUNDS times, and the median is kept: on a shared 2-core box
  // one run is at the mercy of whatever else is scheduled.
  const rows: Array<[string, ...number[]]> = [];
  for (const [label, fn] of [
    ['redis GET -c 50 (req/s)', (t: Target) => redisBench(t.redis, 1)],
    ['redis GET -c 50 -P 16 (req/s)', (t: Target) => redisBench(t.redis, 16)],
    ['pgbench -S -c 8 (tps)', (t: Target) => pgBench(t.pg)],
  ] as const) {
    const runs: number[][] = targets.map(() => []);
    for (let r = 0; r < ROUNDS; r++) targets.forEach((t, i) => runs[i]!.push(fn(t)));
    rows.push([label, ...runs.map((xs) => q(xs, 0.5))]);
  }
  console.log(`\n${`throughput (median of ${ROUNDS})`.padEnd(32)}${targets.map((t) => t.name.padStart(14)).join('')}`);
  for (const [label, ...vals] of rows) console.log(`${label.padEnd(32)}${vals.map((v) => fmt(v).padStart(14)).join('')}`);
  for (const [label, , side, pipe] of rows) console.log(`  ${label}: sidecar/node-pipe = ${(side! / pipe!).toFixed(2)}`);
  if (haproxy) {
    for (const [label, , side, , ha] of rows) console.log(`  ${label}: sidecar/haproxy = ${(side! / ha!).toFixed(2)} ${side! >= ha! ? '(target met)' : '(below target)'}`);
  }

  const n = QUICK ? 2000 : 10000;
  await pingPong(echoPort, 500); // warm-up
  await pingPong(sc.ports.echo!, 500);
  const direct = await pingPong(echoPort, n);
  const via = await pingPong(sc.ports.echo!, n);
  console.log(`\n64-byte ping-pong over ${n} round trips (ms)`);
  console.log(`  direct   p50 ${q(direct, 0.5).toFixed(3)}  p99 ${q(direct, 0.99).toFixed(3)}`);
  console.log(`  sidecar  p50 ${q(via, 0.5).toFixed(3)}  p99 ${q(via, 0.99).toFixed(3)}`);
  console.log(`  added    p50 ${fmt((q(via, 0.5) - q(direct, 0.5)) * 1000)} µs  p99 ${fmt((q(via, 0.99) - q(direct, 0.99)) * 1000)} µs  (target p50 <= 60 µs)`);

  await api(sc.api, 'POST', '/proxies/echo/toxics', { name: 'lat', type: 'latency', stream: 'downstream', attributes: { latency: 50 } });
  const lat = await pingPong(sc.ports.echo!, QUICK ? 40 : 200);
  await api(sc.api, 'DELETE', '/proxies/echo/toxics/lat');
  const base = q(via, 0.5);
  console.log(`\nfault fidelity`);
  console.log(`  latency 50 ms asked: measured added p50 ${(q(lat, 0.5) - base).toFixed(2)} ms, p99 ${(q(lat, 0.99) - base).toFixed(2)} ms  (target p50 within ±1 ms)`);
  await api(sc.api, 'POST', '/proxies/peer-b/toxics', { name: 'loss', type: 'loss', stream: 'upstream', attributes: { probability: 0.1 } });
  const loss = await measureLoss(sc.ports['peer-b']!, 10000);
  await api(sc.api, 'DELETE', '/proxies/peer-b/toxics/loss');
  console.log(`  loss 10 % asked over 10,000 ws messages: measured ${(loss * 100).toFixed(2)} %  (target ±1 point)`);

  const eff = await callToEffect(sc.api, sc.ports.echo!, QUICK ? 50 : 200);
  console.log(`\nAPI call to effect (partition reset seen by the client): p50 ${q(eff, 0.5).toFixed(2)} ms  p99 ${q(eff, 0.99).toFixed(2)} ms  (target p99 <= 5 ms)`);
  console.log(`\nload average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);

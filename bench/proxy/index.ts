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
 * Run: npx tsx bench/proxy/index.ts   (needs `npx tsc -b` first: the sidecar runs as its own process; `make bench-proxy`
 * does both). --help lists the options.
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
const USAGE = `usage: npx tsx bench/proxy/index.ts [--quick] [--rounds N] [--sidecar-main PATH]

Direct vs the sidecar (no fault) vs a bare Node socket.pipe() proxy vs HAProxy (when installed), side by side:
redis-benchmark GET -c 50 with and without -P 16, pgbench -S -c 8, 64-byte ping-pong added latency (p50/p99),
then the sidecar's fault fidelity and API call-to-effect time. Loopback only; needs redis-benchmark and pgbench,
Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; creates sidecar_bench).

  --quick      short run (also BENCH_QUICK=1): 1 round, fewer requests
  --rounds N   throughput rounds per target, median kept (default 3)
  --sidecar-main PATH   the sidecar build to run (default sidecar/dist/main.js; e.g. an older build to compare)
  --help       this text`;
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
for (const a of argv) {
  if (!['--quick', '--rounds', '--sidecar-main'].includes(a) && argv[argv.indexOf(a) - 1] !== '--sidecar-main' && !/^\d+$/.test(a)) {
    console.error(`unknown argument: ${a}\n\n${USAGE}`);
    process.exit(2);
  }
}
const mainAt = argv.indexOf('--sidecar-main');
const MAIN = mainAt >= 0 ? path.resolve(argv[mainAt + 1] ?? '') : path.join(ROOT, 'sidecar/dist/main.js');
const QUICK = process.env.BENCH_QUICK === '1' || argv.includes('--quick');
const roundsAt = argv.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : QUICK ? 1 : 3;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 50) {
  console.error(`--rounds wants an integer 1..50\n\n${USAGE}`);
  process.exit(2);
}
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
  /** A listener in front of the bench's own echo server (ping-pong latency). */
  echo: number;
  /** The proxy's process, for its CPU time (none for direct). */
  pid?: number;
}

async function startSidecar(echoPort: number, wsPort: number): Promise<{ api: string; ports: Record<string, number>; pid: number }> {
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
  return { api: url, ports, pid: proc.pid! };
}

async function startHaproxy(echoPort: number): Promise<Target | null> {
  if (spawnSync('sh', ['-c', 'command -v haproxy']).status !== 0) return null;
  const redis = await freePort();
  const pgPort = await freePort();
  const echo = await freePort();
  const cfg = path.join(tmp, 'haproxy.cfg');
  fs.writeFileSync(cfg, [
    'global', '  maxconn 4096',
    'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 60s', '  timeout server 60s',
    `listen redis`, `  bind 127.0.0.1:${redis}`, '  server r 127.0.0.1:6379',
    `listen postgres`, `  bind 127.0.0.1:${pgPort}`, '  server p 127.0.0.1:5432',
    `listen echo`, `  bind 127.0.0.1:${echo}`, `  server e 127.0.0.1:${echoPort}`,
  ].join('\n') + '\n');
  const proc = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proc);
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => net.connect(redis, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); r(true); }).on('error', () => r(false)));
    if (ok) return { name: 'haproxy', redis, pg: pgPort, echo, pid: proc.pid! };
    await sleep(100);
  }
  throw new Error('haproxy did not start');
}

/**
 * The floor for any Node proxy: accept, dial, socket.pipe() both ways, Node's defaults, nothing else. The sidecar's
 * fast path should cost no more than this; the gap from here to HAProxy is Node's, not the sidecar's.
 */
async function startNodePipe(echoPort: number): Promise<Target> {
  const redis = await freePort();
  const pgPort = await freePort();
  const echo = await freePort();
  const script = `
    const net = require('node:net');
    for (const [listen, up] of [[${redis}, 6379], [${pgPort}, 5432], [${echo}, ${echoPort}]]) {
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
      if (out.split('ready').length > 3) resolve();
    });
    proc.on('exit', (c) => reject(new Error(`node pipe proxy exited with ${c}`)));
  });
  return { name: 'node-pipe', redis, pg: pgPort, echo, pid: proc.pid! };
}

// ---- throughput ------------------------------------------------------------

/** A load generator the bench cannot run without: a clear message rather than a spawn error. */
function need(tool: string): string {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    throw new Error(`${tool} not found on PATH (Debian: apt-get install -y ${tool === 'pgbench' ? 'postgresql-client' : 'redis-tools'})`);
  }
  return tool;
}

/** A run: its rate and how many requests (or transactions) it did. */
interface Run {
  rate: number;
  ops: number;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU time (user + system, all threads) a process has used, in ms; null where /proc is not there. */
function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

function redisBench(port: number, pipeline: number): Run {
  const n = QUICK ? 20000 : pipeline > 1 ? 200000 : 50000;
  const r = spawnSync(need('redis-benchmark'), ['-h', '127.0.0.1', '-p', String(port), '-c', '50', '-n', String(n), '-t', 'get', '-P', String(pipeline), '-q', '--csv'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-benchmark failed: ${r.stderr}`);
  const m = /"GET","([\d.]+)"/.exec(r.stdout);
  if (!m) throw new Error(`cannot parse redis-benchmark output: ${r.stdout}`);
  return { rate: Number(m[1]), ops: n };
}

function pgBench(port: number): Run {
  const r = spawnSync(need('pgbench'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-S', '-n', '-c', '8', '-j', '2', '-T', QUICK ? '2' : '3', 'sidecar_bench'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgbench failed: ${r.stderr}`);
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  if (!m || !done) throw new Error(`cannot parse pgbench output: ${r.stdout}`);
  return { rate: Number(m[1]), ops: Number(done[1]) };
}

async function preparePg(): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await c.connect();
  const exists = await c.query("select 1 from pg_database where datname = 'sidecar_bench'");
  if (exists.rowCount === 0) await c.query('create database sidecar_bench');
  await c.end();
  const r = spawnSync(need('pgbench'), ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-i', '-s', '1', '-q', 'sidecar_bench'], { encoding: 'utf8' });
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
  const haproxy = await startHaproxy(echoPort);
  if (!haproxy) console.log('haproxy not installed: its column is skipped (Debian: apt-get install -y --no-install-recommends haproxy)');
  await preparePg();
  const targets: Target[] = [
    { name: 'direct', redis: 6379, pg: 5432, echo: echoPort },
    { name: 'sidecar', redis: sc.ports.redis!, pg: sc.ports.postgres!, echo: sc.ports.echo!, pid: sc.pid },
    await startNodePipe(echoPort),
    ...(haproxy ? [haproxy] : []),
  ];

  // Targets are measured in turns, ROUNDS times, and the median is kept: on a shared 2-core box
  // one run is at the mercy of whatever else is scheduled.
  const rows: Array<[string, ...number[]]> = [];
  const cpuRows: Array<[string, ...Array<number | null>]> = [];
  for (const [label, fn] of [
    ['redis GET -c 50 (req/s)', (t: Target) => redisBench(t.redis, 1)],
    ['redis GET -c 50 -P 16 (req/s)', (t: Target) => redisBench(t.redis, 16)],
    ['pgbench -S -c 8 (tps)', (t: Target) => pgBench(t.pg)],
  ] as const) {
    const runs: number[][] = targets.map(() => []);
    const cpu: number[][] = targets.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      targets.forEach((t, i) => {
        const before = cpuMs(t.pid);
        const run = fn(t);
        const after = cpuMs(t.pid);
        runs[i]!.push(run.rate);
        if (before !== null && after !== null) cpu[i]!.push(((after - before) * 1000) / run.ops);
      });
    }
    rows.push([label, ...runs.map((xs) => q(xs, 0.5))]);
    cpuRows.push([label, ...cpu.map((xs) => (xs.length ? q(xs, 0.5) : null))]);
  }
  console.log(`\n${`throughput (median of ${ROUNDS})`.padEnd(32)}${targets.map((t) => t.name.padStart(14)).join('')}`);
  for (const [label, ...vals] of rows) console.log(`${label.padEnd(32)}${vals.map((v) => fmt(v).padStart(14)).join('')}`);
  for (const [label, , side, pipe] of rows) console.log(`  ${label}: sidecar/node-pipe = ${(side! / pipe!).toFixed(2)}`);
  if (haproxy) {
    for (const [label, , side, , ha] of rows) console.log(`  ${label}: sidecar/haproxy = ${(side! / ha!).toFixed(2)} ${side! >= ha! ? '(target met)' : '(below target)'}`);
  }
  // Less at the mercy of other load than the rates: on a box where the load generator, the server and the proxy
  // share 2 cores, a proxy's CPU time per request is what it takes away from the other two.
  console.log(`\n${'proxy CPU per request (µs, median)'.padEnd(32)}${targets.map((t) => t.name.padStart(14)).join('')}`);
  for (const [label, ...vals] of cpuRows) console.log(`${label.replace(/ \(.*\)$/, '').padEnd(32)}${vals.map((v) => (v === null ? '—' : fmt(v, 1)).padStart(14)).join('')}`);

  // Every path is timed by the same client code against the same echo server (both in this process), in
  // interleaved blocks so a noisy moment hits all of them alike; "added" is a path's quantile minus direct's.
  const n = QUICK ? 2000 : 10000;
  const BLOCKS = 5;
  for (const t of targets) await pingPong(t.echo, 500); // warm-up
  const lat: number[][] = targets.map(() => []);
  for (let b = 0; b < BLOCKS; b++) {
    for (const [i, t] of targets.entries()) lat[i]!.push(...(await pingPong(t.echo, n / BLOCKS)));
  }
  const d50 = q(lat[0]!, 0.5);
  const d99 = q(lat[0]!, 0.99);
  console.log(`\n64-byte ping-pong, ${n} round trips per path in ${BLOCKS} interleaved blocks (µs)`);
  console.log(`${''.padEnd(12)}${'p50'.padStart(8)}${'p99'.padStart(8)}${'added p50'.padStart(12)}${'added p99'.padStart(12)}`);
  for (const [i, t] of targets.entries()) {
    const p50 = q(lat[i]!, 0.5);
    const p99 = q(lat[i]!, 0.99);
    const added = i === 0 ? ['', ''] : [fmt((p50 - d50) * 1000), fmt((p99 - d99) * 1000)];
    console.log(`  ${t.name.padEnd(10)}${fmt(p50 * 1000).padStart(8)}${fmt(p99 * 1000).padStart(8)}${added[0]!.padStart(12)}${added[1]!.padStart(12)}`);
  }
  const via = lat[1]!;
  const added50 = (q(via, 0.5) - d50) * 1000;
  console.log(`  sidecar added p50 ${fmt(added50)} µs: ${added50 <= 30 ? 'target (<= 30 µs) met' : 'target (<= 30 µs) not met'}`);

  await api(sc.api, 'POST', '/proxies/echo/toxics', { name: 'lat', type: 'latency', stream: 'downstream', attributes: { latency: 50 } });
  const delayed = await pingPong(sc.ports.echo!, QUICK ? 40 : 200);
  await api(sc.api, 'DELETE', '/proxies/echo/toxics/lat');
  const base = q(via, 0.5);
  console.log(`\nfault fidelity`);
  console.log(`  latency 50 ms asked: measured added p50 ${(q(delayed, 0.5) - base).toFixed(2)} ms, p99 ${(q(delayed, 0.99) - base).toFixed(2)} ms  (target p50 within ±1 ms)`);
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

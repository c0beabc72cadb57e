/** The CLI driving a running sidecar (both real child processes): status, apply, clear, reset, fault add|rm|ls, precedence, exit codes. */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { performance } from 'node:perf_hooks';
import { call, portOf, runCli, spawnSidecar } from './helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-cli-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};

t.test('a running sidecar driven by the CLI; flags beat env beat file', async (t) => {
  const cfg = write('sidecar.yaml', [
    'node: from-file',
    'seed: 7',
    'links:',
    '  - { name: redis, listen: "127.0.0.1:0", upstream: "127.0.0.1:6379", protocol: tcp }',
    '  - { name: peer-b, listen: "127.0.0.1:0", upstream: "127.0.0.1:9", protocol: ws }',
  ].join('\n'));
  const sc = await spawnSidecar(['--config', cfg, '--api-port', '0', '--node', 'from-flag', '--profile', 'latency', '--log-level', 'warn'], { CHAOS_SIDECAR_NODE: 'from-env', CHAOS_SIDECAR_SEED: '99' });
  t.teardown(() => sc.stop());
  const api = ['--api', sc.api];
  t.match(sc.line, /node=from-flag .*seed=99/, 'flag beats env for node; env beats file for seed');

  const status = await runCli(['status', ...api]);
  t.equal(status.code, 0);
  t.match(status.stdout, /node from-flag/);
  t.match(status.stdout, /profile: latency/, 'start-up profile from --profile is active');
  t.match(status.stdout, /link redis \[tcp\].*faults: latency-backends/);

  const redisPort = portOf((await call(sc.api, 'GET', '/proxies/redis')).body.listen);
  const r = new Redis({ host: '127.0.0.1', port: redisPort, db: 11, maxRetriesPerRequest: 0, lazyConnect: true });
  await r.connect();
  let t0 = performance.now();
  await r.ping();
  t.ok(performance.now() - t0 >= 75, 'the start-up profile delays Redis replies');

  t.equal((await runCli(['clear', ...api])).code, 0);
  const add = await runCli(['fault', 'add', 'redis', 'redis_error', '--name', 'oom', '--attr', 'error=OOM out of memory', '--duration', '30s', ...api]);
  t.equal(add.code, 0, add.stderr);
  t.match(add.stdout, /added oom on redis/);
  const e = await r.get('k').then(() => null, (err: Error) => err);
  t.match(e?.message ?? '', /^OOM out of memory/, 'fault added by the CLI is seen by ioredis');
  const ls = await runCli(['fault', 'ls', ...api]);
  t.match(ls.stdout, /redis\/oom redis_error upstream \d+s left \(api\)/);
  t.equal((await runCli(['fault', 'rm', 'redis', 'oom', ...api])).code, 0);
  t.equal(await r.ping(), 'PONG');
  r.disconnect();


  const apply = await runCli(['apply', 'partition', ...api]);
  t.equal(apply.code, 0);
  t.match(apply.stdout, /partition-peers -> peer-b/);
  const local = write('mine.yaml', 'name: mine\nfaults:\n  - { link: redis, action: delay, delay: { latency: 5ms } }\n');
  const applyFile = await runCli(['apply', local, ...api]);
  t.match(applyFile.stdout, /applied profile mine\n {2}mine\.0 -> redis/, 'a local YAML file is posted');
  t.equal((await runCli(['reset', ...api])).code, 0);
  t.same((await call(sc.api, 'GET', '/faults')).body.faults, [], 'reset cleared everything');

  t.equal(await sc.stop(), 0, 'SIGTERM stops it cleanly with exit 0');
  const gone = await runCli(['status', ...api]);
  t.equal(gone.code, 1, 'API failures exit 1');
  t.match(gone.stderr, /cannot reach the sidecar API/);
});


/** The CLI as a real child process: --help, usage errors, validate, start refusals, start with no links. */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, runCli, spawnSidecar } from './helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-cli-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};

t.test('--help everywhere, usage errors exit 2', async (t) => {
  const helpArgs = [['--help'], ['fault', 'add', '--help']];
  const [bad, ...helps] = await Promise.all([runCli(['frobnicate']), ...helpArgs.map((a) => runCli(a))]);
  helps.forEach((r, i) => {
    t.equal(r.code, 0, `${helpArgs[i]!.join(' ')} exits 0`);
    t.match(r.stdout, /chaos-sidecar/);
  });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Unknown argument: frobnicate/);
});

t.test('validate: shipped profiles pass; a bad file fails with file:line: field', async (t) => {
  const profiles = fs.readdirSync('chaos-profiles').filter((f) => f.endsWith('.yaml')).map((f) => `chaos-profiles/${f}`);
  const ok = await runCli(['validate', ...profiles]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout.trim().split('\n').length, profiles.length);
  const bad = write('bad.yaml', 'faults:\n  - link: redis\n    action: delay\n    delay: { latency: 10ms, jitterr: 1ms }\n');
  const cfg = write('cfg.yaml', 'node: a\nlinks:\n  - { name: x, listen: "127.0.0.1:0", upstream: nowhere }\n');
  const r = await runCli(['validate', bad, cfg]);
  t.equal(r.code, 2);
  t.match(r.stderr, /bad\.yaml:4: faults\[0\]\.delay\.jitterr: unknown key/);
  t.match(r.stderr, /cfg\.yaml:3: links\[0\]\.upstream: upstream must look like "host:port"/);
});

t.test('start refuses bad config with a clear message and exit code 2', async (t) => {
  const r1 = await runCli(['start', '--api-host', '0.0.0.0', '--api-port', '0']);
  t.equal(r1.code, 2);
  t.match(r1.stderr, /not a loopback address: set an API token/);
  // Other config errors (env, file keys, ports) are checked in-process in profiles.test.ts.
});

t.test('start with no links and a chosen API port, ready for a Toxiproxy client', async (t) => {
  const sc = await spawnSidecar(['--api-port', '0', '--log-level', 'warn']);
  t.teardown(() => sc.stop());
  t.match(sc.line, /links=-/);
  const p = await call(sc.api, 'POST', '/proxies', { name: 'x', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', enabled: true });
  t.equal(p.status, 201);
});

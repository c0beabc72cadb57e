/** Chaos profiles: shipped ones validate and apply; errors name file, line and field; schedules fire and expire. */
import t from 'tap';
import { call, connect, echoServer, portOf, roundTrip, sidecar, wsEchoServer } from './helpers.js';
import { listProfiles, loadProfile, DEFAULT_PROFILES_DIR } from '../../sidecar/src/profiles/loader.js';
import { parseProfile } from '../../sidecar/src/profiles/profile.js';

const SHIPPED = ['partition', 'db-outage', 'redis-outage', 'latency', 'flaky-network', 'byzantine', 'bandwidth'];

t.test('every shipped profile validates and applies', async (t) => {
  const relay = await wsEchoServer();
  const sc = await sidecar({
    links: [
      { name: 'postgres', listen: '127.0.0.1:0', upstream: '127.0.0.1:5432', protocol: 'tcp', enabled: true },
      { name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', protocol: 'tcp', enabled: true },
      { name: 'peer-b', listen: '127.0.0.1:0', upstream: `127.0.0.1:${relay.port}`, protocol: 'ws', enabled: true },
      { name: 'peer-c', listen: '127.0.0.1:0', upstream: `127.0.0.1:${relay.port}`, protocol: 'ws', enabled: true },
    ],
  });
  t.teardown(async () => { await sc.close(); await relay.close(); });
  const available = listProfiles(DEFAULT_PROFILES_DIR);
  for (const name of SHIPPED) {
    t.ok(available.includes(name), `${name} is shipped`);
    const p = loadProfile(name, DEFAULT_PROFILES_DIR);
    const r = await call(sc.apiUrl, 'POST', `/profiles/${name}`);
    t.equal(r.status, 200, `${name} applies`);
    t.same(r.body.skipped, [], `${name}: every entry finds its links`);
    const firstStep = p.steps.filter((s) => s.at === 0).flatMap((s) => s.faults.map((f) => f.input.name));
    const placed = (await call(sc.apiUrl, 'GET', '/faults')).body.faults.map((f: { name: string }) => f.name);
    for (const n of firstStep) t.ok(placed.includes(n), `${name}: ${n} active`);
    t.equal((await call(sc.apiUrl, 'DELETE', '/profiles')).status, 204);
    t.same((await call(sc.apiUrl, 'GET', '/faults')).body.faults, [], `${name}: cleared`);
  }
});

t.test('validation errors name the file, line and field', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['faults:\n  - link: redis\n    action: delay\n    delay:\n      latency: 100ms\n      jiter: 5ms\n', /^x\.yaml:6: faults\[0\]\.delay\.jiter: unknown key/],
    ['faults:\n  - link: redis\n    action: delay\n    delay: { latency: soon }\n', /^x\.yaml:4: faults\[0\]\.delay\.latency: expected a duration/],
    ['faults:\n  - action: loss\n', /^x\.yaml:2: faults\[0\]: missing required key "link"/],
    ['faults:\n  - link: a\n    action: delay\n    type: latency\n', /exactly one of "action" .* or "type"/],
    ['faults:\n  - link: a\n    type: latency\n    attributes: { latency: -5 }\n', /^x\.yaml:4: faults\[0\]\.attributes: attribute "latency" of latency: must be >= 0/],
    ['faults:\n  - link: a\n    type: nope\n', /^x\.yaml:3: faults\[0\]\.type: unknown fault type "nope"/],
    ['faults:\n  - link: a\n    action: loss\n    direction: sideways\n', /^x\.yaml:4: faults\[0\]\.direction: expected to, from or both/],
    ['steps:\n  - at: 1s\n    every: 10s\n    faults:\n      - { link: a, action: partition }\n', /^x\.yaml:3: steps\[0\]\.every: a repeating step needs a duration/],
    ['faults:\n  - link: a\n    action: delay\n  bad indent\n', /^x\.yaml:\d+: invalid YAML/],
    ['name: x\nfaults: []\nextra: 1\n', /^x\.yaml:3: extra: unknown key/],
  ];
  for (const [text, re] of cases) {
    t.throws(() => parseProfile(text, 'x.yaml', 'x'), re, re.source);
  }
  const ok = parseProfile('faults:\n  - link: [redis, "peer-*"]\n    action: loss\n    direction: both\n    loss: { loss: "25", correlation: "50" }\n', 'x.yaml', 'x');
  t.same(ok.steps[0]!.faults[0]!.input, { name: 'x.0', type: 'loss', stream: 'both', toxicity: 1, attributes: { probability: 0.25, correlation: 0.5, mode: 'message' }, source: 'profile:x' }, 'Chaos Mesh vocabulary compiles to our fault');
  const bw = parseProfile('faults:\n  - link: a\n    action: bandwidth\n    bandwidth: { rate: 8mbit }\n', 'x.yaml', 'x');
  t.equal(bw.steps[0]!.faults[0]!.input.attributes!.rate, 1000, '8mbit = 1000 KB/s');
});

t.test('schedules fire and expire, measured through the link', async (t) => {
  const echo = await echoServer();
  const sc = await sidecar({ node: 'a', links: [{ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(async () => { await sc.close(); await echo.close(); });
  const yaml = [
    'name: pulse',
    'steps:',
    '  - at: 300ms',
    '    duration: 1500ms',
    '    every: "@every 3000ms"',
    '    repeat: 2',
    '    faults:',
    '      - { name: pulse-lat, link: "ech*", type: latency, stream: downstream, attributes: { latency: 400 } }',
    '      - { name: only-b, link: echo, nodes: [b], action: partition }',
  ].join('\n');
  const applied = await call(sc.apiUrl, 'POST', '/profiles', yaml, { 'content-type': 'application/yaml' });
  t.equal(applied.status, 200);
  t.same(applied.body.skipped, [{ fault: 'only-b', reason: 'for nodes b, this is a' }], 'entries for other nodes are skipped');
  const state = async () => (await call(sc.apiUrl, 'GET', '/profiles')).body.active.steps[0] as { active: boolean; runs: number; next_change_in_ms: number | null };
  const probe = async () => {
    const s = await connect(portOf(sc.sidecar.links.get('echo')!.spec().listen));
    const ms = await roundTrip(s, Buffer.from('p'));
    s.destroy();
    return ms;
  };
  // Each active window (1.5 s) fits several 400 ms probes, so a probe falls wholly inside one even when timers lag.
  // Probe the link repeatedly; whenever the step's state is the same before and after a probe,
  // the measured delay must agree with it. Timers may lag on a busy box; the agreement may not.
  const transitions: boolean[] = [];
  const wrong: string[] = [];
  let probedActive = 0;
  let probedIdle = 0;
  const t0 = Date.now();
  for (;;) {
    const before = await state();
    const ms = await probe();
    const after = await state();
    for (const st of [before, after]) if (transitions[transitions.length - 1] !== st.active) transitions.push(st.active);
    if (before.active === after.active && before.runs === after.runs) {
      if (before.active) {
        probedActive++;
        if (ms < 395) wrong.push(`active but ${ms.toFixed(0)} ms`);
      } else {
        probedIdle++;
        if (ms >= 395) wrong.push(`idle but ${ms.toFixed(0)} ms`);
      }
    }
    if ((after.runs === 2 && !after.active) || Date.now() - t0 > 15_000) break;
  }
  t.same(wrong, [], `every probe agreed with the schedule (${probedActive} while active, ${probedIdle} while idle)`);
  t.ok(probedActive >= 1 && probedIdle >= 1, 'probed in both states');
  t.same(transitions, [false, true, false, true, false], 'idle, run 1, idle, run 2, idle');
  const st = await state();
  t.match(st, { active: false, runs: 2, next_change_in_ms: null }, 'repeat: 2 means two runs, then nothing is scheduled');
  t.same((await call(sc.apiUrl, 'GET', '/faults')).body.faults, [], 'its faults are gone');
});

t.test('sidecar config: flags > env > file > defaults, errors name the key', async (t) => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { loadConfig } = await import('../../sidecar/src/config.js');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-cfg-')), 'c.yaml');
  fs.writeFileSync(file, 'node: file\nseed: 1\napi: { port: 9000 }\nprofile: latency\nlinks:\n  - { name: redis, listen: "127.0.0.1:0", upstream: "127.0.0.1:6379" }\n');
  const c = loadConfig(file, { node: 'flag' }, { CHAOS_SIDECAR_NODE: 'env', CHAOS_SIDECAR_SEED: '2' });
  t.match(c, { node: 'flag', seed: 2, api: { host: '127.0.0.1', port: 9000 }, profile: 'latency', dialTimeoutMs: 2000 });
  t.same(c.links, [{ name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', protocol: 'tcp', enabled: true }]);
  t.throws(() => loadConfig(undefined, { apiPort: 'eighty' }, {}), /^--api-port: expected a port/);
  t.throws(() => loadConfig(undefined, {}, { CHAOS_SIDECAR_DIAL_TIMEOUT: 'soon' }), /^environment CHAOS_SIDECAR_DIAL_TIMEOUT: expected a duration/);
  fs.writeFileSync(file, 'links:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:1" }\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:1" }\n');
  t.throws(() => loadConfig(file, {}, {}), /c\.yaml:3: links\[1\]\.name: duplicate link name a/);
  fs.rmSync(path.dirname(file), { recursive: true });
});

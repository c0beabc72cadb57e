// The cluster tooling's pure parts: layout, Jepsen shapes compiled into sidecar profiles (checked by the sidecar's
// own parser), the verdict, the report, the generated and shipped configs (checked by the relay's and the sidecar's
// loaders), and the Prometheus alert rules (checked by promtool when it is installed).
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLayout, DEFAULT_PORTS, relayEndpoints } from '../../cluster/src/layout.js';
import { parseGroups, partitionProfileYaml, planPartition } from '../../cluster/src/chaos/shapes.js';
import { loadProfileSource, PROFILE_ALIASES } from '../../cluster/src/chaos/apply.js';
import { violations, type Measured } from '../../cluster/src/experiment/verdict.js';
import { relayConfigKeys, writeRelayConfig, writeSidecarConfig } from '../../cluster/src/configs.js';
import { reportHtml } from '../../cluster/src/report/html.js';
import type { ExperimentResult } from '../../cluster/src/experiment/experiment.js';
import { expectationFor } from '../../cluster/src/experiment/expectations.js';
import { parseProfile } from '../../sidecar/src/profiles/profile.js';
import { parseConfigFile } from '../../sidecar/src/config.js';
import { loadConfig } from '../../relay/src/config/load.js';
import { REPO_ROOT } from './helpers.js';

const five = ['a', 'b', 'c', 'd', 'e'];
const pairs = (p: { blocked: Array<[string, string]> }) => p.blocked.map(([x, y]) => `${x}${y}`).sort();

t.test('the default layout is the documented one', async (t) => {
  const layout = buildLayout({ dir: '/tmp/x', root: REPO_ROOT, nodes: 2, ports: DEFAULT_PORTS });
  const [a, b] = layout.nodes;
  t.match(a, { name: 'a', relayPort: 7001, adminPort: 8080, sidecarApiPort: 8474, database: 'relay_a', redisKeyPrefix: 'a:' });
  t.match(b, { name: 'b', relayPort: 7002, adminPort: 8081, sidecarApiPort: 8475, database: 'relay_b', redisKeyPrefix: 'b:' });
  t.same(a!.links.map((l) => l.name), ['postgres', 'redis', 'peer-b']);
  t.equal(a!.links[2]!.upstream, '127.0.0.1:7002', "a's peer-b link leads to relay-b's client port");
  t.not(layout.postgres.port, 5432);
  t.not(layout.redis.port, 6379);
  const ends = relayEndpoints(layout, a!);
  t.match(ends.databaseUrl, /^postgres:\/\/nostream@127\.0\.0\.1:17000\/relay_a$/, 'the relay reaches PostgreSQL through its sidecar');
  t.same(ends.peers, ['ws://127.0.0.1:17011']);
  t.throws(() => buildLayout({ dir: '/tmp/x', root: REPO_ROOT, nodes: 6, ports: DEFAULT_PORTS }));
});

t.test('Jepsen shapes', async (t) => {
  t.same(pairs(planPartition('isolate', ['a', 'b'])), ['ab', 'ba'], 'two nodes: a two-way partition');
  t.same(pairs(planPartition('isolate', ['a', 'b'], { oneWay: true })), ['ab'], 'one-way: only a loses its link');
  t.same(pairs(planPartition('isolate', five, { node: 'c' })), ['ca', 'cb', 'cd', 'ce', 'ac', 'bc', 'dc', 'ec'].sort());
  const halves = planPartition('halves', five);
  t.same(halves.groups, [['a', 'b', 'c'], ['d', 'e']]);
  t.equal(halves.blocked.length, 12);
  const bridge = planPartition('bridge', five);
  t.same(bridge.groups, [['a', 'b'], ['c'], ['d', 'e']]);
  t.notOk(bridge.blocked.some(([x, y]) => x === 'c' || y === 'c'), 'the bridge node sees everyone');
  t.equal(bridge.blocked.length, 8);
  const ring = planPartition('majorities-ring', five);
  for (const [i, sees] of ring.groups.entries()) t.equal(sees.length, 3, `${five[i]} sees a majority`);
  t.equal(new Set(ring.groups.map((g) => [...g].sort().join())).size, 5, 'no two nodes see the same majority');
  t.same(pairs(planPartition('groups', five, { groups: parseGroups('a,b/c/d,e') })).length, 16);
  t.throws(() => planPartition('bridge', ['a', 'b']), /three nodes/);
  t.throws(() => planPartition('groups', five, { groups: [['a'], ['a', 'b']] }), /two groups/);
  t.throws(() => parseGroups('a,b'), /two groups/);
});

t.test('a compiled partition is a valid sidecar profile whose entries name their node', async (t) => {
  const plan = planPartition('halves', ['a', 'b', 'c']);
  const profile = parseProfile(partitionProfileYaml(plan), 'test', 'x');
  const faults = profile.steps.flatMap((s) => s.faults);
  t.equal(faults.length, 4);
  t.same(faults.find((f) => f.input.name === 'partition-a-c')?.nodes, ['a']);
  t.same(faults.find((f) => f.input.name === 'partition-a-c')?.links, ['peer-c']);
  t.equal(faults[0]!.input.type, 'partition');
  const timed = parseProfile(partitionProfileYaml(plan, 30_000), 'test', 'x');
  t.equal(timed.steps[0]!.duration, 30_000, 'with a duration the sidecars heal by themselves');
});

t.test('every make chaos-* profile exists and parses', async (t) => {
  for (const name of ['partition', 'db-outage', 'redis-outage', 'latency', 'flaky', 'byzantine']) {
    const source = loadProfileSource(REPO_ROOT, name);
    t.ok(parseProfile(source.yaml, source.file, source.name), `${name} -> ${source.file}`);
  }
  t.equal(PROFILE_ALIASES.flaky, 'flaky-network');
  t.equal(loadProfileSource(REPO_ROOT, 'db-outage').naturalDurationMs, 20_000);
  t.throws(() => loadProfileSource(REPO_ROOT, 'no-such-profile'), /no profile/);
});

const measured = (over: Partial<Measured> = {}): Measured => ({
  acked: 100,
  steadyStateError: null,
  checks: [{ node: 'a', missing: [], duplicates: [], served: 100 }, { node: 'b', missing: [], duplicates: [], served: 100 }],
  integrity: [{ node: 'a', ok: true, detail: '' }],
  finalHealthy: [{ node: 'a', healthy: true, detail: '' }],
  symptomExpected: true,
  detectionMs: 800,
  recoveryMs: 2000,
  syncMs: 3000,
  targets: { detectMs: 5000, recoveryMs: 30_000, syncMs: 30_000 },
  ...over,
});

t.test('the verdict', async (t) => {
  t.same(violations(measured()), []);
  t.match(violations(measured({ checks: [{ node: 'b', missing: ['e1'], duplicates: [], served: 99 }] })), [/relay-b: 1 acknowledged event\(s\) missing \(e\.g\. e1\)/]);
  t.match(violations(measured({ checks: [{ node: 'a', missing: [], duplicates: ['e2'], served: 101 }] })), [/more than once/]);
  t.match(violations(measured({ detectionMs: null })), [/never detected/]);
  t.match(violations(measured({ detectionMs: 9000 })), [/detection took 9\.0 s \(target < 5\.0 s\)/]);
  t.match(violations(measured({ recoveryMs: 31_000 })), [/recovery took 31\.0 s/]);
  t.match(violations(measured({ syncMs: null })), [/did not converge/]);
  t.match(violations(measured({ acked: 0 })), [/no event was acknowledged/]);
  t.match(violations(measured({ finalHealthy: [{ node: 'a', healthy: false, detail: 'mode degraded' }] })), [/relay-a did not return to normal: mode degraded/]);
  t.match(violations(measured({ integrity: [{ node: 'a', ok: false, detail: '{"ok":false}' }] })), [/integrity check failed/]);
  t.same(violations(measured({ symptomExpected: false, detectionMs: null })), []);
  t.equal(expectationFor('db-outage', 5).recoveryTargetMs, 60_000, 'runbook: DB recovery < 60 s');
  t.equal(expectationFor('crash', 5).recoveryTargetMs, 30_000, 'runbook: crash recovery < 30 s');
  t.equal(expectationFor('partition', 5).syncTargetMs, 30_000, 'runbook: partition sync < 30 s');
});

t.test('the report is one self-contained HTML page with the timeline SVG', async (t) => {
  const t0 = Date.now();
  const result = {
    profile: 'db-outage', description: 'd', runbook: 'r', nodes: ['a', 'b'], startedAt: t0, endedAt: t0 + 20_000, faultAt: t0 + 5000, healAt: t0 + 12_000,
    recoveredAt: t0 + 14_000, convergedAt: t0 + 15_000, detectedAt: t0 + 5500, detectedOn: 'a', actions: ['applied'],
    workload: { sent: 10, acked: 9, rejected: 1, timedOut: 0, unsent: 0, rejections: { error: 1 } }, acked: 9, ackedDuringFault: 4, lost: 0, duplicated: 0,
    detectionMs: 500, recoveryMs: 2000, syncMs: 3000, expectation: expectationFor('db-outage', 5), checks: [], integrity: [],
    samples: [{ t: t0 + 6000, node: 'a', up: true, mode: 'degraded', cache: 'ok', partitioned: false, peersUp: 1, signatureFailures: 0 }],
    acks: [{ t: t0 + 1000, node: 'a' }], markers: [{ t: t0, label: 'start <b>' }], violations: [], passed: true,
  } satisfies ExperimentResult;
  const html = reportHtml([result], 'demo');
  t.match(html, /<svg [^>]*>/);
  t.match(html, /#e67e22/, 'the degraded sample is drawn in its colour');
  t.match(html, /start &lt;b&gt;/, 'text is escaped');
  t.notMatch(html, /<script|src="http/, 'no scripts, nothing loaded from outside');
});

t.test('generated configs load in the relay and the sidecar', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-units-'));
  const layout = buildLayout({ dir, root: REPO_ROOT, nodes: 3, ports: DEFAULT_PORTS });
  const known = await relayConfigKeys(REPO_ROOT);
  const launch = writeRelayConfig(layout, layout.nodes[0]!, known);
  const config = loadConfig({ file: launch.configFile, env: {} });
  t.equal(config.dbPoolSize, 10);
  t.equal(config.port, 7001);
  t.equal(config.adminPort, 8080);
  t.match(readFileSync(launch.configFile, 'utf8'), /db_pool_size: 10/, '`cat config.yaml | grep pool` shows the pool');
  const sidecarFile = writeSidecarConfig(layout, layout.nodes[0]!);
  const parsed = parseConfigFile(readFileSync(sidecarFile, 'utf8'), sidecarFile);
  t.same(parsed.links.map((l) => l.name), ['postgres', 'redis', 'peer-b', 'peer-c']);
  t.equal(parsed.values.node, 'a');
  rmSync(dir, { recursive: true, force: true });
});

t.test('deploy/: the example config, the sidecar config and the unit templates', async (t) => {
  const deploy = join(REPO_ROOT, 'deploy/systemd');
  const config = loadConfig({ file: join(deploy, 'config.yaml'), env: {} });
  t.equal(config.dbPoolSize, 20);
  t.equal(config.heartbeatTimeoutMs, 30_000, 'runbook default heartbeat timeout');
  t.ok(parseConfigFile(readFileSync(join(deploy, 'sidecar.yaml'), 'utf8'), 'sidecar.yaml').links.length >= 3);
  for (const unit of ['nostream-node@.service', 'chaos-sidecar@.service']) {
    const text = readFileSync(join(deploy, unit), 'utf8');
    t.match(text, /^Restart=always$/m, `${unit} restarts always`);
    t.match(text, /^ExecStart=\/usr\/bin\/node \/opt\/nostream\/\w+\/dist\/main\.js start --config \/etc\/nostream\/%i\//m);
  }
  t.same(readdirSync(deploy).sort(), ['chaos-sidecar@.service', 'config.yaml', 'nostream-node@.service', 'sidecar.yaml']);
});

const systemdAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
t.test('the unit templates pass systemd-analyze verify', { skip: systemdAnalyze ? false : 'systemd-analyze not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'units-'));
  const files = ['nostream-node', 'chaos-sidecar'].map((u) => {
    const file = join(dir, `${u}@a.service`);
    writeFileSync(file, readFileSync(join(REPO_ROOT, `deploy/systemd/${u}@.service`)));
    return file;
  });
  const res = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
  t.equal(res.status, 0, res.stderr);
  t.notMatch(res.stderr, /Unknown key|Unknown section|Invalid/, res.stderr);
  rmSync(dir, { recursive: true, force: true });
});

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
t.test('alert rules pass promtool check and unit tests', { skip: promtool ? false : 'promtool not installed (apt-get install prometheus)' }, async (t) => {
  const dir = join(REPO_ROOT, 'deploy/prometheus');
  t.match(execFileSync('promtool', ['check', 'rules', join(dir, 'alerts.yaml')], { encoding: 'utf8' }), /SUCCESS: 11 rules found/);
  t.match(execFileSync('promtool', ['test', 'rules', join(dir, 'alerts.test.yaml')], { encoding: 'utf8' }), /SUCCESS/);
});

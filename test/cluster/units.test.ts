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
import { EXIT_CODES, INTEGRITY_UNANSWERED, judge, type Measured } from '../../cluster/src/experiment/verdict.js';
import type { NodeCheck } from '../../cluster/src/experiment/checker.js';
import type { FaultProof } from '../../cluster/src/experiment/fault-proof.js';
import { crashHypothesis, parseHypothesis } from '../../cluster/src/experiment/hypothesis.js';
import type { Sample } from '../../cluster/src/experiment/observer.js';
import { detect, recoveredAt } from '../../cluster/src/experiment/times.js';
import { judgeDuring, windowStats } from '../../cluster/src/experiment/availability.js';
import type { Attempt } from '../../cluster/src/experiment/workload.js';
import { journalOf } from '../../cluster/src/report/journal.js';
import { relayConfigKeys, writeRelayConfig, writeSidecarConfig } from '../../cluster/src/configs.js';
import { reportHtml } from '../../cluster/src/report/html.js';
import type { ExperimentResult } from '../../cluster/src/experiment/experiment.js';
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
  for (const name of ['partition', 'db-outage', 'redis-outage', 'latency', 'flaky', 'byzantine', 'bandwidth']) {
    const source = loadProfileSource(REPO_ROOT, name);
    t.ok(parseProfile(source.yaml, source.file, source.name), `${name} -> ${source.file}`);
  }
  t.equal(PROFILE_ALIASES.flaky, 'flaky-network');
  t.equal(loadProfileSource(REPO_ROOT, 'db-outage').naturalDurationMs, 20_000);
  t.throws(() => loadProfileSource(REPO_ROOT, 'no-such-profile'), /no profile/);
});

const node = (name: string, over: Partial<NodeCheck> = {}): NodeCheck => ({ node: name, stored: 100, missing: [], unserved: [], duplicates: [], undeleted: [], badStreams: [], foreign: [], ...over });
const proof = (over: Partial<FaultProof> = {}): FaultProof => ({ node: 'a', fault: 'f', type: 'latency', links: ['postgres'], installed: true, fired: 10, problem: null, ...over });
const measured = (over: Partial<Measured> = {}): Measured => ({
  aborted: null,
  acked: 100,
  runnerBehind: { behind: 0, due: 100, error: null },
  faults: [proof()],
  faultErrors: [],
  check: { nodes: [node('a'), node('b')], divergent: [], storedNotAcked: 0 },
  integrity: [{ node: 'a', ok: true, detail: '' }],
  finalHealthy: [{ node: 'a', healthy: true, detail: '' }],
  during: [],
  readers: [],
  symptomExpected: true,
  detectionMs: 800,
  recoveryMs: 2000,
  syncMs: 3000,
  targets: { detectMs: 5000, recoveryMs: 30_000, syncMs: 30_000 },
  ...over,
});

// The verdict is a pure function of what was measured; these pin its rules. Whether the experiment measures the
// right thing is test/cluster/experiment.test.ts's job (real cluster, real faults, broken on purpose).
t.test('the verdict: precedence and the violation each measurement produces', async (t) => {
  t.same(judge(measured()), { verdict: 'PASS', violations: [], inconclusive: [] });
  const failWith = (over: Partial<Measured>, re: RegExp) => {
    const j = judge(measured(over));
    t.equal(j.verdict, 'FAIL', String(re));
    t.match(j.violations.join('\n'), re);
  };
  failWith({ check: { nodes: [node('b', { missing: ['e1'] })], divergent: [], storedNotAcked: 0 } }, /relay-b: 1 acknowledged event\(s\) missing \(e\.g\. e1\)/);
  failWith({ check: { nodes: [node('a', { duplicates: ['e2'] })], divergent: [], storedNotAcked: 0 } }, /served more than once for one REQ/);
  failWith({ check: { nodes: [node('a'), node('b')], divergent: [{ node: 'b', only: ['e3'] }], storedNotAcked: 0 } }, /divergence: relay-b holds 1 event/);
  failWith({ check: { nodes: [node('a', { undeleted: ['e4'] })], divergent: [], storedNotAcked: 0 } }, /after an acknowledged deletion/);
  failWith({ check: { nodes: [node('a', { foreign: ['e5'] })], divergent: [], storedNotAcked: 0 } }, /never sent or that fail verification/);
  failWith({ detectionMs: null }, /never detected/);
  failWith({ detectionMs: 9000 }, /detection took 9\.0 s \(target < 5\.0 s\)/);
  failWith({ recoveryMs: 31_000 }, /recovery took 31\.0 s/);
  failWith({ syncMs: null }, /did not sync/);
  failWith({ during: ['availability: 0.0 % of 50 publishes'] }, /availability/);
  failWith({ finalHealthy: [{ node: 'a', healthy: false, detail: 'mode degraded' }] }, /relay-a did not return to normal: mode degraded/);
  failWith({ integrity: [{ node: 'a', ok: false, detail: '{"ok":false}' }] }, /integrity check failed/);
  t.equal(judge(measured({ symptomExpected: false, detectionMs: null })).verdict, 'PASS', 'no symptom to detect: detection not judged');
  t.equal(judge(measured({ faults: [proof({ fired: 0, problem: 'installed on postgres but never fired' })] })).verdict, 'INCONCLUSIVE');
  t.equal(judge(measured({ faults: [] })).verdict, 'INCONCLUSIVE', 'a profile that placed nothing tests nothing');
  t.equal(judge(measured({ acked: 0 })).verdict, 'INCONCLUSIVE');
  t.equal(judge(measured({ integrity: [{ node: 'a', ok: null, detail: INTEGRITY_UNANSWERED }] })).verdict, 'INCONCLUSIVE', 'an integrity check that did not answer was not made');
  t.equal(judge(measured({ integrity: [{ node: 'a', ok: null, detail: 'endpoint not available' }] })).verdict, 'PASS', 'a relay without the endpoint is not held to it');
  t.equal(judge(measured({ runnerBehind: { behind: 5, due: 100, error: null } })).verdict, 'PASS', '5 % short of the rate is within tolerance');
  t.match(judge(measured({ runnerBehind: { behind: 6, due: 100, error: null } })), { verdict: 'INCONCLUSIVE', inconclusive: [/could not sign fast enough: 6 of 100/] }, 'the load claimed was not applied');
  t.equal(judge(measured({ faults: [proof({ problem: 'x' })], syncMs: null })).verdict, 'FAIL', 'a violation is a failure even when the fault did not bite');
  t.equal(judge(measured({ aborted: 'relay-a down for 60 s', syncMs: null })).verdict, 'ABORTED', 'aborted trumps everything');
  t.same(EXIT_CODES, { PASS: 0, FAIL: 1, INCONCLUSIVE: 3, ABORTED: 4 });
});

t.test('hypotheses: every shipped profile has one, and the parser refuses what it does not know', async (t) => {
  for (const name of ['partition', 'db-outage', 'redis-outage', 'latency', 'flaky', 'byzantine', 'bandwidth']) {
    const h = parseHypothesis(loadProfileSource(REPO_ROOT, name).hypothesis, 5);
    t.ok(h.runbook.length > 10 && !h.runbook.startsWith('custom'), `${name}: ${h.runbook}`);
    t.ok(Object.keys(h.during).length > 0, `${name} judges availability during the fault`);
  }
  const partition = parseHypothesis(loadProfileSource(REPO_ROOT, 'partition').hypothesis, 5);
  t.equal(partition.detectTargetMs, 10_000, '`heartbeat + 5s` with a 5 s heartbeat timeout');
  t.equal(partition.during.eachNodeAcks, true, 'each side keeps accepting');
  t.equal(parseHypothesis(loadProfileSource(REPO_ROOT, 'db-outage').hypothesis, 5).during.minAckRatio, 0.99);
  t.equal(parseHypothesis(loadProfileSource(REPO_ROOT, 'redis-outage').hypothesis, 5).during.minThroughputRatio, 0.5);
  t.equal(parseHypothesis(undefined, 5).symptom, null, 'no hypothesis: the defaults');
  t.throws(() => parseHypothesis({ detect: { symptom: 'sneezing' } }, 5), { name: 'HypothesisError', message: /expected one of none, degraded/ });
  t.throws(() => parseHypothesis({ during: { min_ack_ratio: 1.5 } }, 5), /from 0 to 1/);
  t.throws(() => parseHypothesis({ hold: 'soon' }, 5), /hypothesis\.hold/);
  t.throws(() => parseHypothesis({ typo: 1 }, 5), /unknown key/);
  t.equal(crashHypothesis().recoveryTargetMs, 30_000, 'runbook: crash recovery < 30 s');
});

const sample = (t0: number, over: Partial<Sample>): Sample => ({
  t: t0, node: 'a', up: true, startedAt: 0, mode: 'normal', modeSince: 0, replaying: false, queueDepth: 0, cache: 'ok', cacheSince: 0,
  partitioned: false, partitionedSince: null, peersUp: 1, peerDownSince: null, peerUpSince: 0, signatureFailures: 0, ...over,
});

t.test('detection and recovery are the relay\'s own transition times, not the sampling grid', async (t) => {
  const fault = 10_000;
  const samples = [
    sample(9_900, {}),
    sample(10_100, {}),
    sample(10_300, { mode: 'degraded', modeSince: 10_240 }),
    sample(10_400, { mode: 'degraded', modeSince: 10_240 }),
    sample(20_050, { mode: 'normal', modeSince: 20_012 }),
    sample(20_150, { mode: 'normal', modeSince: 20_012 }),
  ];
  t.same(detect('degraded', samples, new Map(), 1, fault, 30_000), { at: 10_240, node: 'a' }, 'detected at modeSince, 60 ms before the sample saw it');
  t.equal(recoveredAt(['a'], samples, 1, 20_000).at, 20_012, 'recovered at the return transition');
  const flapping = [...samples, sample(20_250, { mode: 'degraded', modeSince: 20_200 }), sample(20_350, { mode: 'normal', modeSince: 20_330 })];
  t.equal(recoveredAt(['a'], flapping, 1, 20_000).at, 20_330, 'a relapse moves recovery to the last return');
  t.equal(recoveredAt(['a'], [...samples, sample(20_250, { up: false })], 1, 20_000).at, null, 'not healthy at the end: not recovered');
  const gossipOnly = [sample(20_050, { partitioned: true }), sample(20_150, { peerUpSince: 19_000 })];
  t.equal(recoveredAt(['a'], gossipOnly, 1, 20_000).at, 20_150, 'no return transition after the last unhealthy sample: the healthy sample\'s time');
  const partition = [sample(10_500, { peersUp: 0, peerDownSince: 13_010 }), sample(14_000, { peersUp: 0, peerDownSince: 13_010, partitioned: true, partitionedSince: 13_500 })];
  t.equal(detect('partition', partition, new Map(), 1, fault, 30_000)?.at, 13_010, 'a peer link going down is the earliest sign');
  t.equal(detect('down', [sample(10_050, {}), sample(10_150, { up: false })], new Map(), 1, fault, 30_000)?.at, 10_150, 'a crash: the first sample that finds it down');
});

t.test('availability during the fault is judged against the steady state of the same run', async (t) => {
  const attempt = (at: number, node: string, ok: boolean, latency = 10) => ({ seq: at, node, at, outcome: ok ? 'acked' : 'refused', doneAt: at + latency, message: '', published: {} }) as unknown as Attempt;
  const steadyAttempts = Array.from({ length: 100 }, (_, i) => attempt(i * 10, i % 2 ? 'a' : 'b', true, 5));
  const steady = windowStats(steadyAttempts, 0, 1000, ['a', 'b']);
  t.equal(steady.acksPerSecond, 100);
  t.equal(steady.p50Ms, 5);
  const refusedOnB = Array.from({ length: 100 }, (_, i) => attempt(2000 + i * 10, i % 2 ? 'a' : 'b', i % 2 === 1, 5));
  const during = windowStats(refusedOnB, 2000, 3000, ['a', 'b']);
  t.match(judgeDuring({ minAckRatio: 0.99 }, steady, during, ['a', 'b']).join(), /50\.0 % of 100 publishes/);
  t.match(judgeDuring({ eachNodeAcks: true }, steady, during, ['a', 'b']).join(), /relay-b acknowledged none of its 50/);
  t.match(judgeDuring({ minThroughputRatio: 0.6 }, steady, during, ['a', 'b']).join(), /50\.0 acks\/s during the fault, 100\.0 before/);
  t.same(judgeDuring({ minThroughputRatio: 0.5 }, steady, during, ['a', 'b']), [], 'exactly half the steady rate is enough for 0.5x');
  const slow = windowStats(Array.from({ length: 100 }, (_, i) => attempt(2000 + i * 10, 'a', true, 30)), 2000, 3000, ['a']);
  t.match(judgeDuring({ minLatencyRiseMs: 50 }, steady, slow, ['a']).join(), /rose by 25 ms/);
  t.same(judgeDuring({ minLatencyRiseMs: 20 }, steady, slow, ['a']), []);
  t.match(judgeDuring({ minAckRatio: 0.9 }, steady, windowStats([], 2000, 3000, ['a']), ['a']).join(), /no publish was attempted/);
});

t.test('the report is one self-contained HTML page with the timeline, the times against targets and the latency', async (t) => {
  const t0 = Date.now();
  const stats = windowStats([], t0, t0 + 1, ['a']);
  const result: ExperimentResult = {
    profile: 'db-outage', description: 'd', runbook: 'r', hypothesis: parseHypothesis(loadProfileSource(REPO_ROOT, 'db-outage').hypothesis, 5), nodes: ['a', 'b'],
    startedAt: t0, endedAt: t0 + 20_000, faultAt: t0 + 5000, healAt: t0 + 12_000, recoveredAt: t0 + 14_000, convergedAt: t0 + 15_000, syncedAt: t0 + 15_000,
    detectedAt: t0 + 5500, detectedOn: 'a', actions: ['applied'], activities: [{ type: 'probe', name: 'steady state before', start: '', end: '', durationMs: 1, status: 'succeeded', output: {} }],
    workload: { sent: 10, acked: 9, rejected: 1, timedOut: 0, unsent: 0, behind: 0, rejections: { error: 1 }, roles: { regular: 10 } }, rate: 200, acked: 9, ackedDuringFault: 4,
    steady: stats, during: stats, lost: 0, duplicated: 0, storedNotAcked: 1, detectionMs: 500, recoveryMs: 2000, syncMs: 3000, faults: [proof()], check: null, readers: [], integrity: [],
    samples: [sample(t0 + 6000, { mode: 'degraded' })], acks: [{ t: t0 + 1000, node: 'a' }], latency: [{ t: t0 + 1000, p50: 5, p99: 9, n: 3 }],
    markers: [{ t: t0, label: 'start <b>' }], verdict: 'PASS', exitCode: 0, violations: [], inconclusive: [], aborted: null, passed: true,
  };
  const html = reportHtml([result], 'demo');
  t.match(html, /<svg [^>]*>/);
  t.match(html, /#e67e22/, 'the degraded sample is drawn in its colour');
  t.match(html, /start &lt;b&gt;/, 'text is escaped');
  t.match(html, /0\.50 s \(target &lt; 5 s\)/, 'detection drawn against its target');
  t.match(html, /publish→OK p50/);
  t.notMatch(html, /<script|src="http/, 'no scripts, nothing loaded from outside');
  const journal = journalOf(result);
  t.match(journal, { format: 'nostr-chaos-journal/1', status: 'completed', verdict: 'PASS', exit_code: 0, deviated: false, steady_states: { before: { steady_state_met: true } } });
  t.same((journal.measurements as Record<string, unknown>).targets_ms, { detection: 5000, recovery: 60_000, sync: 60_000 });
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
  t.match(execFileSync('promtool', ['check', 'rules', join(dir, 'alerts.yaml')], { encoding: 'utf8' }), /SUCCESS: 13 rules found/);
  t.match(execFileSync('promtool', ['test', 'rules', join(dir, 'alerts.test.yaml')], { encoding: 'utf8' }), /SUCCESS/);
});

// The experiment runner against real two-relay clusters (private PostgreSQL and Redis, every relay behind its
// sidecar), broken on purpose to prove each check can fail: an acknowledged event deleted from one node behind the
// relay's back FAILS (lost and divergent), a relay that refuses every write during db-outage FAILS on availability,
// a fault that never installs is INCONCLUSIVE, an abort bound crossed or a Ctrl-C ABORTS and rolls back.
import t from 'tap';
import pg from 'pg';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directEndpoints } from '../../cluster/src/layout.js';
import { readProcesses } from '../../cluster/src/state.js';
import { listFaults } from '../../cluster/src/chaos/sidecar-client.js';
import { runExperiment } from '../../cluster/src/experiment/experiment.js';
import { buildCluster, startTestCluster, type TestCluster } from './helpers.js';

// Real processes on a machine that may be busy with the rest of the suite: allow more than tap's default.
t.setTimeout(600_000);

let cluster: TestCluster;
const profiles = mkdtempSync(join(tmpdir(), 'experiment-profiles-'));
const profile = (name: string, yaml: string) => {
  const file = join(profiles, `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
};

t.before(async () => {
  buildCluster();
  cluster = await startTestCluster(2);
});
t.teardown(async () => {
  await cluster?.stop();
});

// A modest rate: the proofs here are about what the checks detect, not about throughput (bench/ measures that).
const quick = { holdMs: 3000, warmupMs: 2000, cooldownMs: 1000, rate: 40 } as const;

const noFaultsLeft = async (t: { same: (a: unknown, b: unknown, m: string) => void }, c: TestCluster) => {
  for (const n of c.state.layout.nodes) t.same(await listFaults(directEndpoints(c.state.layout, n).sidecarUrl), [], `sidecar-${n.name}: every fault removed`);
};

t.test('a clean latency experiment passes: the fault is proven, latency measured, sync measured from the heal', async (t) => {
  const result = await runExperiment({ layout: cluster.state.layout, profile: 'latency', ...quick });
  t.same([...result.violations, ...result.inconclusive], [], 'no violations, nothing inconclusive');
  t.equal(result.verdict, 'PASS');
  t.equal(result.exitCode, 0);
  t.ok(result.acked > 100, `events were acknowledged (${result.acked})`);
  t.ok(result.ackedDuringFault > 20, `acknowledged during the fault: ${result.ackedDuringFault}`);
  t.ok((result.workload.roles.deletion ?? 0) > 0 && (result.workload.roles.replaceable ?? 0) + (result.workload.roles.addressable ?? 0) > 0, `a mix of kinds: ${JSON.stringify(result.workload.roles)}`);
  t.equal(result.faults?.length, 4, 'both faults on both sidecars');
  for (const f of result.faults ?? []) t.ok(f.fired > 0 && f.problem === null, `${f.node}/${f.fault} fired ${f.fired} times`);
  t.ok(result.during!.p50Ms! - result.steady!.p50Ms! >= 50, `publish->OK p50 rose from ${result.steady!.p50Ms} to ${result.during!.p50Ms} ms`);
  t.ok(result.syncMs !== null && result.syncedAt! >= result.healAt, `sync measured from the heal: ${result.syncMs} ms`);
  for (const r of result.readers) t.ok(r.required > 0 && r.missed === 0, `relay-${r.node}'s reader saw all ${r.required} events it had to`);
  await noFaultsLeft(t, cluster);
});

t.test('an acknowledged event deleted from one node behind the relay\'s back: FAIL, lost there and divergent', async (t) => {
  let deleted = '';
  const result = await runExperiment({
    layout: cluster.state.layout,
    profile: 'latency',
    ...quick,
    beforeFinalCheck: async ({ acks, targets, deletionTargets }) => {
      // A regular event the workload itself never deleted (one it did is rightly gone already).
      const kept = acks.filter((a) => a.role === 'regular' && !deletionTargets.has(a.id));
      deleted = kept[Math.floor(kept.length / 3)]!.id;
      const db = new pg.Client({ connectionString: targets[1]!.databaseUrl });
      await db.connect();
      try {
        const res = await db.query('DELETE FROM events WHERE id = $1', [deleted]);
        t.equal(res.rowCount, 1, 'the acknowledged event was in relay-b\'s database and is now gone');
        await db.query('DELETE FROM event_tags WHERE event_id = $1', [deleted]);
        // And a tombstone, so anti-entropy cannot put it back before the check (it now heals a plain deletion
        // behind the relay's back: test/network/windowed-sync.test.ts): relay-b believes it was deleted.
        await db.query(`INSERT INTO tombstones (id, reason) VALUES ($1, 'deleted')`, [deleted]);
      } finally {
        await db.end();
      }
    },
  });
  t.equal(result.verdict, 'FAIL');
  t.equal(result.exitCode, 1);
  t.equal(result.lost, 1, 'exactly one event lost');
  t.same(result.check!.nodes.find((c) => c.node === 'b')!.missing, [deleted], 'the missing event is the deleted one');
  t.same(result.check!.divergent, [{ node: 'a', only: [deleted] }], 'relay-a holds an event relay-b lacks');
  t.match(result.violations.join('\n'), /relay-b: 1 acknowledged event\(s\) missing/);
  t.match(result.violations.join('\n'), /divergence: relay-a holds 1 event/);
});

t.test('a fault that never installs is INCONCLUSIVE, never PASS', async (t) => {
  const file = profile('nowhere', 'name: nowhere\nfaults:\n  - name: delay-nothing\n    link: no-such-link\n    action: delay\n    delay:\n      latency: 10ms\n');
  const result = await runExperiment({ layout: cluster.state.layout, profile: file, ...quick });
  t.same(result.violations, [], 'nothing broke');
  t.equal(result.verdict, 'INCONCLUSIVE');
  t.equal(result.exitCode, 3);
  t.match(result.inconclusive.join('\n'), /fault delay-nothing: installed on no sidecar \(here: no link matches no-such-link\)/);
});

t.test('a Ctrl-C mid-fault ABORTS: every sidecar reset, the workload stopped, a result written', async (t) => {
  const interrupt = new AbortController();
  const started = Date.now();
  const pending = runExperiment({ layout: cluster.state.layout, profile: 'partition', ...quick, holdMs: 60_000, signal: interrupt.signal });
  setTimeout(() => interrupt.abort(), 6000);
  const result = await pending;
  t.equal(result.verdict, 'ABORTED');
  t.equal(result.exitCode, 4);
  t.match(result.aborted, /interrupted/);
  t.ok(Date.now() - started < 50_000, 'stopped long before the 60 s hold');
  t.ok(result.activities.some((a) => a.type === 'rollback' && a.status === 'succeeded'), 'the rollback ran');
  await noFaultsLeft(t, cluster);
});

t.test('a crash experiment: SIGKILL, the supervisor restarts the relay, nothing acknowledged is lost', async (t) => {
  const before = readProcesses(cluster.dir).find((p) => p.name === 'relay-a')!;
  const result = await runExperiment({ layout: cluster.state.layout, profile: 'crash', ...quick, holdMs: 0 });
  t.same([...result.violations, ...result.inconclusive], [], 'no violations');
  const after = readProcesses(cluster.dir).find((p) => p.name === 'relay-a')!;
  t.equal(after.restarts, before.restarts + 1, 'the supervisor restarted relay-a once');
  t.equal(after.lastExit?.signal, 'SIGKILL');
  t.ok(result.recoveryMs !== null, `restarted and serving in ${result.recoveryMs} ms`);
  t.ok(result.detectionMs !== null, 'the crash was seen');
  t.ok(result.during!.ackedPerNode.b! > 0, 'relay-b kept acknowledging while relay-a was down');
});

t.test('with a journal too small to carry the outage', async (t) => {
  // A second cluster whose relays refuse writes once a 4 KB journal is full: db-outage must then fail availability.
  process.env.RELAY_JOURNAL_MAX_BYTES = '4096';
  let small: TestCluster;
  try {
    small = await startTestCluster(2);
  } finally {
    delete process.env.RELAY_JOURNAL_MAX_BYTES;
  }
  t.teardown(() => small.stop());

  await t.test('db-outage FAILS on availability when the relays refuse writes during the outage', async (t) => {
    const result = await runExperiment({ layout: small.state.layout, profile: 'db-outage', ...quick, holdMs: 4000 });
    t.equal(result.verdict, 'FAIL');
    t.ok(result.during!.ackRatio! < 0.99, `only ${(result.during!.ackRatio! * 100).toFixed(1)} % acknowledged during the outage`);
    t.match(result.violations.join('\n'), /availability: .* acknowledged during the fault \(expected >= 99\.0 %\)/);
    t.equal(result.lost, 0, 'what was acknowledged is still not lost');
  });

  await t.test('an abort bound crossed ABORTS the run and rolls the fault back', async (t) => {
    const base = (await import('node:fs')).readFileSync(join(small.state.layout.root, 'chaos-profiles/db-outage.yaml'), 'utf8').replace(/hypothesis:[\s\S]*$/, '');
    const file = profile('db-outage-abort', `${base}hypothesis:\n  hold: 60s\n  abort:\n    max_error_ratio: 0.2\n    window: 2s\n`);
    const started = Date.now();
    const result = await runExperiment({ layout: small.state.layout, profile: file, warmupMs: 2000, cooldownMs: 1000, rate: 40 });
    t.equal(result.verdict, 'ABORTED');
    t.equal(result.exitCode, 4);
    t.match(result.aborted, /publishes failed within 2 s \(abort bound: more than 20 %\)/);
    t.ok(Date.now() - started < 50_000, 'stopped long before the 60 s hold');
    await noFaultsLeft(t, small);
  });
});

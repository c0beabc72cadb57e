// The experiment verdict against a real one-relay cluster (private PostgreSQL and Redis, relay behind its sidecar):
// a clean run passes; the same run with one acknowledged event deleted from the node's database behind the relay's
// back fails, naming that event.
import t from 'tap';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { paths } from '../../cluster/src/layout.js';
import { readProcesses } from '../../cluster/src/state.js';
import { runExperiment } from '../../cluster/src/experiment/experiment.js';
import { buildCluster, startTestCluster, type TestCluster } from './helpers.js';

let cluster: TestCluster;
// Real processes on a machine that may be busy with the rest of the suite: allow more than tap's default.
t.setTimeout(300_000);

t.before(async () => {
  buildCluster();
  cluster = await startTestCluster(1);
});
t.teardown(async () => {
  await cluster?.stop();
});

const quick = { holdMs: 2000, warmupMs: 1500, cooldownMs: 1000, rate: 25 } as const;

t.test('a clean latency experiment passes: every acknowledged event present exactly once', async (t) => {
  const result = await runExperiment({ layout: cluster.state.layout, profile: 'latency', ...quick });
  t.same(result.violations, [], 'no violations');
  t.ok(result.passed);
  t.ok(result.acked > 20, `events were acknowledged (${result.acked})`);
  t.equal(result.lost, 0);
  t.equal(result.duplicated, 0);
  t.ok(result.actions.some((a) => a.includes('latency-backends on postgres,redis')), `the profile reached the sidecar: ${result.actions.join(' | ')}`);
  t.ok(result.samples.length > 0, 'the observer sampled the node');
});

t.test('deleting one acknowledged event behind the relay\'s back fails the verdict', async (t) => {
  let deleted = '';
  const result = await runExperiment({
    layout: cluster.state.layout,
    profile: 'latency',
    ...quick,
    beforeFinalCheck: async ({ acks, targets }) => {
      deleted = acks[Math.floor(acks.length / 2)]!.id;
      const db = new pg.Client({ connectionString: targets[0]!.databaseUrl });
      await db.connect();
      try {
        const res = await db.query('DELETE FROM events WHERE id = $1', [deleted]);
        t.equal(res.rowCount, 1, 'the acknowledged event was in the database and is now gone');
        // Its tag rows too, so that the only thing wrong afterwards is the missing event.
        await db.query('DELETE FROM event_tags WHERE event_id = $1', [deleted]);
      } finally {
        await db.end();
      }
    },
  });
  t.notOk(result.passed, 'the verdict fails');
  t.equal(result.lost, 1, 'exactly one event lost');
  t.same(result.checks[0]!.missing, [deleted], 'the missing event is the deleted one');
  t.match(result.violations.join('\n'), /relay-a: 1 acknowledged event\(s\) missing/);
});

t.test('a crash experiment: SIGKILL, the supervisor restarts the relay, nothing acknowledged is lost', async (t) => {
  const before = readProcesses(cluster.dir).find((p) => p.name === 'relay-a')!;
  const result = await runExperiment({ layout: cluster.state.layout, profile: 'crash', ...quick, holdMs: 0 });
  t.same(result.violations, [], 'no violations');
  const after = readProcesses(cluster.dir).find((p) => p.name === 'relay-a')!;
  t.equal(after.restarts, before.restarts + 1, 'the supervisor restarted relay-a once');
  t.equal(after.lastExit?.signal, 'SIGKILL');
  t.match(readFileSync(paths(cluster.state.layout).supervisorLog, 'utf8'), /process exited; restarting/);
  t.ok(result.recoveryMs !== null && result.recoveryMs < 30_000, `restarted and serving in ${result.recoveryMs} ms`);
  t.ok(result.detectionMs !== null, 'the crash was seen (health down)');
});

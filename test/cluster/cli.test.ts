// The operator's commands against a real two-relay cluster (free ports, temp folder): status, a database outage on
// one node and its heal, a Jepsen partition and its heal, the runbook's log phrases, psql and redis-cli through the
// shims, and one experiment through the CLI with its exit code and report. (Crash and restart: experiment.test.ts.)
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { relayConfigKeys } from '../../cluster/src/configs.js';
import { directEndpoints, paths } from '../../cluster/src/layout.js';
import { listFaults } from '../../cluster/src/chaos/sidecar-client.js';
import { resetCluster } from '../../cluster/src/chaos/apply.js';
import { logFiles, tail } from '../../cluster/src/logs.js';
import { buildCluster, CHAOS_CLI, cli, CLUSTER_CLI, REPO_ROOT, startTestCluster, type TestCluster } from './helpers.js';

// Real processes on a machine that may be busy with the rest of the suite: allow more than tap's default.
t.setTimeout(300_000);
buildCluster();
const peering = (await relayConfigKeys(REPO_ROOT)).has('peers');
if (!peering) t.plan(0, 'the relay has no peering yet (no `peers` setting)');

let cluster: TestCluster;
const admin = (node: 'a' | 'b') => directEndpoints(cluster.state.layout, cluster.state.layout.nodes.find((n) => n.name === node)!).adminUrl;
const get = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(2000) })).json() as Promise<Record<string, unknown>>;

async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    try {
      if (await probe()) return Date.now() - started;
    } catch {
      // Not answering yet (a relay restarting): try again.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

if (peering) {
  t.before(async () => {
    cluster = await startTestCluster(2);
    await eventually('peers up', async () => (await get(`${admin('a')}/admin/gossip/status`)).partitioned === false && (await get(`${admin('b')}/admin/gossip/status`)).partitioned === false, 30_000);
  });
  t.teardown(async () => {
    await cluster?.stop();
  });

  t.test('status shows both relays healthy and peered', async (t) => {
    const { code, out } = cli(CLUSTER_CLI, cluster.dir, ['status']);
    t.equal(code, 0, out);
    t.match(out, /relay-a\s+\d+\s+0\s+:\d+\s+200\s+normal\s+ok\s+1\/1\s+false/);
    t.match(out, /relay-b\s+\d+\s+0\s+:\d+\s+200\s+normal\s+ok\s+1\/1\s+false/);
  });

  t.test('a database outage on relay-a only: degraded, then healed by chaos reset, logged as the runbook says', async (t) => {
    const applied = cli(CHAOS_CLI, cluster.dir, ['apply', 'db-outage', '--nodes', 'a']);
    t.equal(applied.code, 0, applied.out);
    t.match(applied.out, /sidecar-a: db-refuse on postgres; db-reset on postgres/);
    t.notMatch(applied.out, /sidecar-b/, 'relay-b untouched');
    t.match(applied.out, /make chaos-reset/, 'says how to heal');
    const detected = await eventually('relay-a degraded', async () => (await get(`${admin('a')}/admin/status`)).mode === 'degraded', 10_000);
    t.ok(detected < 5000, `degraded mode within ${detected} ms`);
    t.equal((await get(`${admin('b')}/admin/status`)).mode, 'normal', 'relay-b stays normal');
    await resetCluster(cluster.state.layout);
    const recovered = await eventually('relay-a normal', async () => (await get(`${admin('a')}/admin/status`)).mode === 'normal', 60_000);
    t.ok(recovered < 60_000, `normal again ${recovered} ms after the heal (runbook: < 60 s)`);
    t.match(tail(logFiles(cluster.state.layout, 'relay', 'a'), 0).join('\n'), /"msg":"database recovered"/, 'make logs NODE=a | grep "database recovered"');
    const shim = execFileSync('bash', ['-c', `source ${paths(cluster.state.layout).envFile} && journalctl -u nostream-node -n 200 | grep "database recovered" | wc -l`], { encoding: 'utf8' });
    t.ok(Number(shim.trim()) >= 1, 'journalctl -u nostream-node -n 200 | grep "database recovered" works through the shim');
    const psql = execFileSync('bash', ['-c', `source ${paths(cluster.state.layout).envFile} && psql -h localhost -U nostream -tAc "SELECT COUNT(*) FROM events" && redis-cli ping`], { encoding: 'utf8' });
    t.match(psql, /^\d+\nPONG\n$/, 'psql and redis-cli as written in the runbook');
  });

  t.test('a partition isolating relay-a: compiled into one fault per sidecar, healed by reset', async (t) => {
    // Detection and sync of a partition are measured by the `chaos run` test below.
    const applied = cli(CHAOS_CLI, cluster.dir, ['partition', '--shape', 'isolate', '--node', 'a', '--existing', 'reset']);
    t.equal(applied.code, 0, applied.out);
    t.match(applied.out, /blocked: a->b b->a/);
    t.match(applied.out, /sidecar-a: partition-a-b on peer-b/);
    t.match(applied.out, /sidecar-b: partition-b-a on peer-a/);
    const [a, b] = cluster.state.layout.nodes.map((n) => directEndpoints(cluster.state.layout, n).sidecarUrl);
    t.match(await listFaults(a!), [{ link: 'peer-b', name: 'partition-a-b', type: 'partition' }]);
    t.match(await listFaults(b!), [{ link: 'peer-a', name: 'partition-b-a', type: 'partition' }]);
    await resetCluster(cluster.state.layout);
    t.same([...(await listFaults(a!)), ...(await listFaults(b!))], [], 'no fault left after the reset');
  });

  // The CLI's plumbing (exit code, table, report, journal) at a light rate: this file runs beside
  // test/cluster/experiment.test.ts's own cluster, and the verdict's semantics are tested there.
  t.test('chaos run: a partition experiment passes, exits 0 and writes its report', async (t) => {
    const report = join(cluster.dir, 'report.html');
    const run = cli(CHAOS_CLI, cluster.dir, ['run', 'partition', '--shape', 'halves', '--existing', 'reset', '--hold', '5s', '--rate', '50', '--report', report]);
    t.equal(run.code, 0, run.out);
    // acked, acked/attempted during the fault, then lost 0, duplicated 0, stored-but-unacknowledged 0.
    t.match(run.out, /partition-halves\s+\d+\s+\d+\/\d+\s+0\s+0\s+0\s+/);
    t.match(run.out, /verdict: PASS \(partition-halves, exit 0\)/);
    t.ok(existsSync(report) && existsSync(report.replace(/\.html$/, '.json')), 'report and raw data written');
    const journal = JSON.parse(readFileSync(report.replace(/\.html$/, '.journal.json'), 'utf8')) as { status: string };
    t.equal(journal.status, 'completed', 'the journal says completed');
    t.match(readFileSync(report, 'utf8'), /<svg /);
  });

  t.test('bad input is refused with a clear message and exit code 2', async (t) => {
    const bad = cli(CHAOS_CLI, cluster.dir, ['apply', 'no-such-profile']);
    t.equal(bad.code, 2);
    t.match(bad.out, /error: no profile no-such-profile/);
  });
}

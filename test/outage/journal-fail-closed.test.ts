import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshRedisNamespace } from '../helpers/db.js';
import { freePort } from '../helpers/private-instances.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';

// A journal write that fails half way leaves a torn record, which the journal cuts back off the file. If that cut
// fails too, a later append would land behind the torn record, be fsync'd and acknowledged, and be discarded at the
// next start with the torn record and everything after it. The journal must fail closed instead.
//
// All real, no hook in the relay: a small tmpfs, filled up, makes the write stop short (ENOSPC after a partial
// write), and the journal file marked append-only (chattr +a) makes the kernel refuse the truncation (EPERM).
// Mounting needs root (or CAP_SYS_ADMIN): the test is skipped without it.
const root = mkdtempSync(join(tmpdir(), 'journal-fail-closed-'));
const mnt = join(root, 'mnt');
mkdirSync(mnt);
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt], { stdio: 'ignore' });
  mounted = true;
} catch {
  // not privileged
}
const dataDir = join(mnt, 'data');
const journalFile = join(dataDir, 'journal', 'journal.log');
const filler = join(mnt, 'filler');
const ns = freshRedisNamespace();
let relay: RelayProcess | undefined;
t.teardown(async () => {
  await relay?.stop();
  if (mounted) {
    try {
      execFileSync('chattr', ['-a', journalFile], { stdio: 'ignore' });
    } catch {
      // not set
    }
    execFileSync('umount', [mnt], { stdio: 'ignore' });
  }
  rmSync(root, { recursive: true, force: true });
  await ns.cleanup();
});

/** Fills the filesystem: a file grown until the kernel says ENOSPC. */
function fill(): void {
  const chunk = Buffer.alloc(4096, 1);
  for (let i = 0; i < 1000; i++) {
    try {
      writeFileSync(filler, chunk, { flag: 'a' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw err;
    }
  }
  throw new Error('the tmpfs did not fill up');
}

t.test('a failed write that cannot be cut back fails the journal closed; nothing acknowledged is lost at restart', { skip: mounted ? false : 'needs root to mount a tmpfs' }, async (t) => {
  // PostgreSQL unreachable from the start: every event goes to the journal.
  const deadDb = `postgres://postgres@127.0.0.1:${await freePort()}/none`;
  const start = () => startRelay({ databaseUrl: deadDb, redisUrl: ns.url, redisKeyPrefix: ns.prefix, dataDir, args: ['--db-connect-timeout-ms', '300'] });
  relay = await start();
  const status = async () => (await relay!.admin<{ mode: string; storage: { journal: { state: string; reason?: string } } }>('/admin/status')).body;
  t.equal((await status()).mode, 'degraded');

  const client = await RawClient.connect(relay.url);
  const first = signed({ content: 'journaled before the disk filled up' });
  t.same(await client.publish(first), { ok: true, message: '' }, 'journaled');
  const acked = [first.id];

  fill();
  execFileSync('chattr', ['+a', journalFile]);
  // Larger than what is left in the journal file's last page: the write stops short, then ENOSPC.
  const big = signed({ content: 'x'.repeat(20_000) });
  t.match(await client.publish(big), { ok: false, message: /^error: .*disk-full/ }, 'the event whose write failed is refused');
  t.equal((await status()).storage.journal.state, 'failed-closed', '/admin/status shows the journal failed closed');
  // The log line travels through the child's stdout pipe: wait for it, but let a missing one fail this check only.
  t.ok(await relay.waitForLog(/^journal: failed closed/, 5000).then(() => true, () => false), 'logged');

  // The disk has room again, but the file still ends in a torn record: nothing may be appended after it.
  rmSync(filler);
  const after = signed({ content: 'would sit behind the torn record' });
  const res = await client.publish(after);
  if (res.ok) acked.push(after.id);
  t.match(res, { ok: false, message: /^error: .*journal-failed/ }, 'later events are refused, not acknowledged into a torn tail');
  const metrics = (await relay.admin<string>('/metrics')).body;
  t.match(metrics, /relay_journal_failed_closed 1\b/, 'gauge');
  t.match(metrics, /relay_journal_errors_total\{code="failed-closed"\} 1\b/, 'counted');
  await client.close();

  // The operator fixes the disk and restarts: the torn tail is cut, every acknowledged event is still there.
  await relay.stop();
  execFileSync('chattr', ['-a', journalFile]);
  relay = await start();
  const recovered = await relay.waitForLog(/^journal: events from a previous run are waiting for replay$/, 10_000);
  t.equal(recovered.events, acked.length, `every acknowledged event survived the restart (${acked.length})`);
  t.equal((await status()).storage.journal.state, 'ok', 'the journal accepts appends again');
  const again = await RawClient.connect(relay.url);
  t.same(await again.publish(signed({ content: 'after the restart' })), { ok: true, message: '' });
  await again.close();
});

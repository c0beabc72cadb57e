// One connection sends 3,000 CLOSE frames with 100 KB subscription ids (the issue saw the relay grow from
// 117 MB to 432 MB RSS: the ids were kept forever). Each is refused with a NOTICE, counted, and forgotten: the
// relay process's RSS stays within a generous bound and it keeps serving.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { assertHonestP99, honestPublishes } from './helpers/honest-latency.js';

const FRAMES = 3000;
const ID_LENGTH = 100 * 1024;
/** The ids alone are 300 MB; kept, they grow the relay by more than that. Allow a third of it for garbage not yet collected. */
const RSS_GROWTH_BOUND_MB = 120;

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay();
});
t.teardown(async () => {
  await relay?.stop();
  await relay?.cleanup();
});

t.test('3000 CLOSE frames with 100 KB ids: refused, forgotten, bounded memory', async (t) => {
  const pid = relay.child.pid!;
  // Warm the relay up (a query, a publish) so the baseline includes what normal serving allocates.
  const warm = await RawClient.connect(relay.url);
  t.equal((await warm.publish(signed())).ok, true);
  t.ok((await warm.query('warm', { limit: 10 })).eose);
  await warm.close();
  const baseline = await honestPublishes(relay.url);
  const before = rssMb(pid);

  const c = await RawClient.connect(relay.url);
  let notices = 0;
  c.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as unknown[];
    if (frame[0] === 'NOTICE' && String(frame[1]).startsWith('invalid: CLOSE subscription id is longer')) notices++;
  });
  let peak = before;
  // An honest client publishes while the flood is read.
  let floodDone = false;
  const honestDuring = (async () => {
    await new Promise((r) => setTimeout(r, 100));
    const overlapped = !floodDone;
    const ms = await honestPublishes(relay.url);
    return { ms, overlapped };
  })();
  for (let i = 0; i < FRAMES; i++) {
    const id = String(i).padStart(8, '0') + 'x'.repeat(ID_LENGTH - 8);
    c.send(['CLOSE', id]);
    // Let the socket drain now and then, so the flood arrives as fast as the relay reads it, not all buffered here.
    if (i % 50 === 49) {
      while (c.ws.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
      // Yield either way: this process also runs the honest client, whose answers must not wait for the whole flood.
      await new Promise((r) => setImmediate(r));
      peak = Math.max(peak, rssMb(pid));
    }
  }
  const deadline = Date.now() + 60_000;
  while (notices < FRAMES && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, rssMb(pid));
  }
  floodDone = true;
  t.equal(notices, FRAMES, 'every CLOSE answered with an invalid: NOTICE');
  const during = await honestDuring;
  assertHonestP99(t, baseline, during.ms, 'the CLOSE flood');
  t.ok(during.overlapped, 'the honest publishes began while the flood was being answered');
  c.frames.length = 0; // the NOTICEs were counted above
  const after = rssMb(pid);
  t.ok(after - before < RSS_GROWTH_BOUND_MB, `RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB (peak ${peak.toFixed(0)} MB); bound +${RSS_GROWTH_BOUND_MB} MB`);

  // A REQ with a 100 KB id is refused too, and its CLOSED does not echo 100 KB back.
  c.send(['REQ', 'y'.repeat(ID_LENGTH), { limit: 1 }]);
  const closed = await c.next((f) => f[0] === 'CLOSED');
  t.match(closed[2], /^invalid: subscription id is longer than 64/);
  t.ok(String(closed[1]).length <= 64, 'the CLOSED carries at most 64 characters of the id');
  t.equal(c.closeCode, undefined, 'the flooding connection is still open (refusals are answers, not crashes)');

  // Still serving: a fresh client publishes and queries.
  const honest = await RawClient.connect(relay.url);
  const ev = signed({ content: 'after the flood' });
  t.same(await honest.publish(ev), { ok: true, message: '' });
  const got = await honest.query('after', { ids: [ev.id] });
  t.equal(got.events.length, 1, 'the relay serves after the flood');
  await honest.close();
  await c.close();

  const metrics = await relay.admin<string>('/metrics');
  const line = metrics.body.split('\n').find((l) => l.startsWith('relay_client_refusals_total{reason="close-subid"}'));
  t.equal(Number(line?.split(' ').at(-1)), FRAMES, `counted: ${line}`);
  t.equal((await relay.admin<{ mode: string }>('/admin/status')).body.mode, 'normal');
});

t.test('CLOSE of an open subscription still ends it; CLOSE of an unknown id is harmless', async (t) => {
  const c = await RawClient.connect(relay.url);
  await c.subscribe('live', { kinds: [1] });
  c.send(['CLOSE', 'never-opened']);
  c.send(['CLOSE', 'live']);
  const publisher = await RawClient.connect(relay.url);
  t.equal((await publisher.publish(signed({ kind: 1 }))).ok, true);
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(c.frames.some((f) => f[0] === 'EVENT' && f[1] === 'live'), 'no live event after CLOSE');
  t.notOk(c.frames.some((f) => f[0] === 'NOTICE'), 'no NOTICE for a valid CLOSE of an unknown id');
  await publisher.close();
  await c.close();
});

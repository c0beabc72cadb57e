// A Byzantine client (its own process, connecting from 127.0.0.2 so the test can ban it without banning the
// honest clients on 127.0.0.1) against a real relay: every invalid event refused and logged, the address
// banned once its reputation crosses the threshold, its connection closed and its reconnects refused, nothing
// invalid stored or fanned out; a flood is throttled with `rate-limited:` and then banned too.
import t from 'tap';
import { generateSecretKey } from 'nostr-tools/pure';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { NostrLink, craft, startMaliciousNode } from '../helpers/malicious-node.js';

let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay({ args: ['--rate-limits', 'connection:*:50/10s,pubkey:*:1000/10s'] });
});
t.teardown(async () => {
  await relay.stop();
  await relay.cleanup();
});

interface ScoreRow {
  subject: string;
  score: number;
  banned: boolean;
  offences: Record<string, number>;
}

t.test('forged and altered events: all refused, the sender banned, closed, refused on reconnect; honest clients unaffected', async (t) => {
  const watcher = await RawClient.connect(relay.url);
  watcher.send(['REQ', 'all', { kinds: [1] }]);
  await watcher.next((f) => f[0] === 'EOSE' && f[1] === 'all');
  const honest = await RawClient.connect(relay.url);

  const node = startMaliciousNode(relay.url, { forged: 4, altered: 4 }, { localAddress: '127.0.0.2', authenticate: false });
  const report = await node.report;
  t.equal(report.answers.true ?? 0, 0, 'no invalid event was accepted');
  t.ok((report.answers.invalid ?? 0) >= 5, `${report.answers.invalid} answered OK false "invalid: ...", the one that caused the ban included`);
  t.equal(report.closeCode, 1008, 'the relay closed the link (policy violation)');
  t.ok(report.closedAfterMs !== undefined && report.closedAfterMs < 5000, `closed ${report.closedAfterMs} ms after the first forged event`);
  t.equal(report.reconnect, 'refused', 'reconnecting from the banned address is refused');

  const failures = relay.logs.filter((l) => String(l.msg).startsWith('signature verification failed'));
  t.ok(failures.length >= 5, 'each invalid event logged "signature verification failed"');
  t.ok(failures.every((l) => String(l.clientAddress).startsWith('127.0.0.2')), 'with the client address');
  await relay.waitForLog(/^client banned$/);

  const scores = await relay.admin<{ scores: ScoreRow[] }>('/admin/reputation/scores');
  const row = scores.body.scores.find((s) => s.subject === '127.0.0.2');
  t.ok(row, '127.0.0.2 is listed in the scores');
  t.ok(row!.banned && row!.score <= 0, `banned with score ${row!.score}`);
  t.ok((row!.offences.signature ?? 0) >= 1 && (row!.offences.id ?? 0) >= 1, 'both offences counted');

  const refused = await NostrLink.connect(relay.url, { localAddress: '127.0.0.2', authenticate: false }).then(
    () => 0,
    (err: { status?: number }) => err.status ?? -1,
  );
  t.equal(refused, 403, 'upgrade from the banned address answered 403');

  const ok = await honest.publish(signed({ content: 'honest during the attack' }));
  t.same(ok, { ok: true, message: '' }, 'honest client on 127.0.0.1 still publishes');
  const stored = await honest.query('invalid', { ids: report.invalidIds });
  t.same(stored.events, [], 'nothing invalid stored');
  const fannedOut = watcher.frames.filter((f) => f[0] === 'EVENT' && report.invalidIds.includes((f[2] as { id: string }).id));
  t.same(fannedOut, [], 'nothing invalid fanned out to subscribers');

  const metrics = (await relay.admin<string>('/metrics')).body;
  t.match(metrics, /relay_invalid_events_total\{reason="signature",source="client"\} [1-9]/);
  t.match(metrics, /relay_invalid_events_total\{reason="id",source="client"\} [1-9]/);
  t.match(metrics, /relay_bans_total\{origin="auto",type="client"\} 1/);

  const unban = await relay.admin('/admin/peers/unban', { method: 'POST', body: JSON.stringify({ address: '127.0.0.2' }) });
  t.equal(unban.status, 200, 'unbanned through the API');
  const back = await NostrLink.connect(relay.url, { localAddress: '127.0.0.2', authenticate: false });
  t.same(await back.publish(craft.valid(generateSecretKey())), { ok: true, message: '' }, 'accepted again after the unban');
  await back.close();
  await honest.close();
  await watcher.close();
});

t.test('a flood is throttled with rate-limited:, counted against the reputation, and ends in a ban', async (t) => {
  const node = startMaliciousNode(relay.url, { flood: { perSecond: 400, seconds: 2 } }, { localAddress: '127.0.0.3', authenticate: false });
  const report = await node.report;
  const reader = await RawClient.connect(relay.url);
  const stored = (await reader.query('flood', { authors: [node.nodeId], limit: 1000 })).events.length;
  await reader.close();
  // A sliding window admits at most `limit` per window length: over a flood lasting T ms, 50 x (1 + T / 10 s).
  const floodMs = (report.closedAt ?? Date.now()) - report.floodStartedAt!;
  const bound = Math.floor(50 * (1 + floodMs / 10_000));
  t.ok(stored >= 30 && stored <= bound, `${stored} of ${report.sent} stored in ${floodMs} ms: within the limit of 50 per 10 s (at most ${bound})`);
  t.ok((report.answers['rate-limited'] ?? 0) >= 1, `${report.answers['rate-limited']} answered OK false "rate-limited: ..." before the link closed`);
  t.equal(report.closeCode, 1008, 'banned after 100 rate-limit hits and closed');
  const metrics = (await relay.admin<string>('/metrics')).body;
  t.match(metrics, /relay_rate_limited_total\{scope="connection",source="client"\} (9\d|[1-9]\d\d)/, 'about 100 rate-limit hits (1 point each) before the ban');
  const bans = await relay.admin<{ bans: Array<{ subject: string; origin: string }> }>('/admin/bans');
  t.ok(bans.body.bans.some((b) => b.subject === '127.0.0.3' && b.origin === 'auto'), 'automatic ban exported');
});

t.test('malformed messages count against the reputation; loopback is exempt from automatic bans by default', async (t) => {
  const link = await NostrLink.connect(relay.url);
  for (let i = 0; i < 30; i++) link.send('this is not json');
  await new Promise((r) => setTimeout(r, 500));
  t.ok(link.open, 'the loopback client (reputation_exempt) is not banned');
  const scores = await relay.admin<{ scores: ScoreRow[] }>('/admin/reputation/scores');
  const row = scores.body.scores.find((s) => s.subject === '127.0.0.1');
  t.ok(row && (row.offences.malformed ?? 0) >= 30 && row.score <= 0, `127.0.0.1 scored down to ${row?.score} yet not banned`);
  t.notOk(row?.banned);
  await link.close();
});

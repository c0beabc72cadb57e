// NIP-01 conformance against a real relay process on real PostgreSQL and Redis, driven by raw `ws`
// frames and by nostr-tools (an independent client). Follows the public relay-tester checklist.
import t from 'tap';
import { Relay as NostrToolsRelay, useWebSocketImplementation } from 'nostr-tools/relay';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';

useWebSocketImplementation(WebSocket);

let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay({ args: ['--max-subscriptions', '5', '--max-filters', '3', '--max-limit', '50', '--default-limit', '20', '--max-message-length', '20000', '--max-content-length', '5000'] });
});
t.teardown(async () => {
  await relay.stop();
  await relay.cleanup();
});

const now = () => Math.floor(Date.now() / 1000);

t.test('nostr-tools publishes and subscribes: OK true, stored events, EOSE, live events after EOSE', async (t) => {
  const client = await NostrToolsRelay.connect(relay.url);
  const first = signed({ content: 'nostr-tools first' });
  t.equal(await client.publish(first), '', 'OK true with an empty message');
  const received: string[] = [];
  let eose = false;
  const live = signed({ content: 'after eose' });
  let livePublished: Promise<string> | undefined;
  await new Promise<void>((resolve) => {
    client.subscribe([{ ids: [first.id, live.id] }], {
      onevent: (e) => {
        received.push(e.id);
        if (eose && e.id === live.id) resolve();
      },
      oneose: () => {
        eose = true;
        livePublished = client.publish(live);
      },
    });
  });
  t.same(received, [first.id, live.id], 'stored event before EOSE, live event after');
  t.equal(await livePublished, '', 'the live event got OK true');
  client.close();
});

t.test('every EVENT gets an OK; duplicates are OK true "duplicate:"', async (t) => {
  const c = await RawClient.connect(relay.url);
  const e = signed();
  t.same(await c.publish(e), { ok: true, message: '' });
  const dup = await c.publish(e);
  t.equal(dup.ok, true);
  t.match(dup.message, /^duplicate:/);
  await c.close();
});

t.test('signatures and ids are verified', async (t) => {
  const c = await RawClient.connect(relay.url);
  const badSig = signed();
  badSig.sig = (badSig.sig[0] === 'a' ? 'b' : 'a') + badSig.sig.slice(1);
  let r = await c.publish(badSig);
  t.equal(r.ok, false);
  t.match(r.message, /^invalid:/);
  const badId = signed();
  const altered = { ...badId, content: badId.content + '!' };
  r = await c.publish(altered);
  t.equal(r.ok, false);
  t.match(r.message, /^invalid:.*id/);
  const stored = await c.query('chk', { ids: [badSig.id, badId.id] });
  t.same(stored.events, [], 'nothing invalid is stored');
  await c.close();
});

t.test('unusual but valid content round-trips: escapes, non-characters, null char, empty tags, extra fields, big kinds, old dates', async (t) => {
  const c = await RawClient.connect(relay.url);
  const cases = [
    signed({ content: 'line\nbreak "quote" \\ backslash \t tab \u0001 \u001f \u2028 \u2029' }),
    signed({ content: 'non-characters \uFFFE \uFFFF \uFDD0 emoji 🎉 RTL \u202E' }),
    signed({ content: 'null char \u0000 inside' }),
    signed({ content: 'empty tags', tags: [] }),
    signed({ content: 'tag with empty string', tags: [['t', ''], ['x']] }),
    signed({ content: 'kind above 16 bits', kind: 70000 }),
    signed({ content: 'before 1970', created_at: -1000 }),
    signed({ content: 'long ago', created_at: 1 }),
  ];
  for (const e of cases) {
    const r = await c.publish(e);
    t.same(r, { ok: true, message: '' }, `accepted: ${e.content.slice(0, 20)}`);
  }
  const back = await c.query('rt', { ids: cases.map((e) => e.id), limit: 50 });
  t.equal(back.events.length, cases.length, 'all read back');
  for (const e of cases) {
    const got = back.events.find((x) => x.id === e.id);
    t.same(got, e, `identical after the round trip: ${e.content.slice(0, 20)}`);
  }
  const extra = { ...signed({ content: 'extra field' }), extra_field: { kept: true } };
  t.same(await c.publish(extra), { ok: true, message: '' });
  const got = await c.query('extra', { ids: [extra.id] });
  t.same(got.events[0], extra, 'non-standard JSON fields are preserved');
  await c.close();
});

t.test('created_at in the distant future is refused with invalid:', async (t) => {
  const c = await RawClient.connect(relay.url);
  const r = await c.publish(signed({ created_at: now() + 86400 * 365 * 50 }));
  t.equal(r.ok, false);
  t.match(r.message, /^invalid: created_at/);
  await c.close();
});

t.test('filters: ids, authors, kinds, tags, since/until inclusive, limit ordering, limit 0', async (t) => {
  const c = await RawClient.connect(relay.url);
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  const base = now() - 1000;
  const evs = [
    signed({ kind: 7001, created_at: base, tags: [['t', 'alpha'], ['p', 'x']] }, sk),
    signed({ kind: 7001, created_at: base + 10, tags: [['t', 'beta']] }, sk),
    signed({ kind: 7002, created_at: base + 20, tags: [['t', 'alpha'], ['e', 'y']] }, sk),
    signed({ kind: 7002, created_at: base + 20, tags: [['t', 'gamma']] }, sk),
    signed({ kind: 7003, created_at: base + 30 }, sk),
  ];
  for (const e of evs) t.equal((await c.publish(e)).ok, true);
  const ids = (r: { events: Array<Record<string, unknown>> }) => r.events.map((e) => e.id);
  const sameTime = [evs[2]!, evs[3]!].sort((a, b) => (a.id < b.id ? -1 : 1));

  t.same(ids(await c.query('a', { authors: [pk] })), [evs[4]!.id, sameTime[0]!.id, sameTime[1]!.id, evs[1]!.id, evs[0]!.id], 'newest first, ties by lowest id');
  t.same(ids(await c.query('b', { authors: [pk], kinds: [7001] })), [evs[1]!.id, evs[0]!.id], 'pubkey + kind');
  t.same(ids(await c.query('c', { authors: [pk], '#t': ['alpha'] })), [evs[2]!.id, evs[0]!.id], 'pubkey + tag');
  t.same(ids(await c.query('d', { kinds: [7002], '#t': ['alpha', 'gamma'] })).sort(), [evs[2]!.id, evs[3]!.id].sort(), 'kind + tag values OR');
  t.same(ids(await c.query('e', { '#t': ['alpha'], '#e': ['y'] })), [evs[2]!.id], 'multiple tag letters AND');
  t.same(ids(await c.query('f', { authors: [pk], since: base + 10, until: base + 20 })).sort(), [evs[1]!.id, evs[2]!.id, evs[3]!.id].sort(), 'since and until inclusive');
  t.same(ids(await c.query('g', { authors: [pk], limit: 2 })), [evs[4]!.id, sameTime[0]!.id], 'limit returns the newest');
  t.same(ids(await c.query('h', { authors: [pk], limit: 0 })), [], 'limit 0: no stored events, just EOSE');
  t.same(ids(await c.query('i', { ids: [evs[0]!.id] }, { ids: [evs[1]!.id] })).sort(), [evs[0]!.id, evs[1]!.id].sort(), 'filters OR');
  t.same(ids(await c.query('j', { authors: [pk], since: -100000, until: -1 })), [], 'negative since/until are valid');
  t.same(ids(await c.query('k', { '#t': ["alpha' OR 1=1; DROP TABLE events; --"] })), [], 'SQL-looking tag values are just values');
  await c.close();
});

t.test('limits clamp: more matching events stored than max_limit (50) and default_limit (20)', async (t) => {
  const c = await RawClient.connect(relay.url);
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  const base = now() - 5000;
  // 60 > max_limit, so a clamp that did not happen would show as 60.
  const evs = Array.from({ length: 60 }, (_, i) => signed({ kind: 7010, created_at: base + i }, sk));
  for (const e of evs) t.equal((await c.publish(e)).ok, true);
  const newest = evs.slice().reverse().map((e) => e.id);
  const all = await c.query('all', { authors: [pk], kinds: [7010], since: base, limit: 50 });
  t.equal(all.events.length, 50, 'limit 50 returns 50');
  const clamped = await c.query('l', { authors: [pk], kinds: [7010], limit: 100000 });
  t.ok(clamped.eose, 'EOSE');
  t.same(clamped.events.map((e) => e.id), newest.slice(0, 50), 'a huge limit is clamped to max_limit: the newest 50 of 60');
  const unlimited = await c.query('d', { authors: [pk], kinds: [7010] });
  t.same(unlimited.events.map((e) => e.id), newest.slice(0, 20), 'no limit: default_limit, the newest 20');
  await c.close();
});

t.test('a REQ with an existing id replaces it; CLOSE stops live events', async (t) => {
  const c = await RawClient.connect(relay.url);
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  await c.subscribe('sub', { kinds: [9991], authors: [pk] });
  await c.subscribe('sub', { kinds: [9992], authors: [pk] });
  const pub = await RawClient.connect(relay.url);
  const old = signed({ kind: 9991 }, sk);
  const cur = signed({ kind: 9992 }, sk);
  await pub.publish(old);
  await pub.publish(cur);
  const got = await c.next((f) => f[0] === 'EVENT' && f[1] === 'sub');
  t.equal((got[2] as { id: string }).id, cur.id, 'the replacement filter applies');
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(c.frames.some((f) => f[0] === 'EVENT' && (f[2] as { id: string }).id === old.id), 'the replaced filter no longer delivers');
  c.send(['CLOSE', 'sub']);
  await new Promise((r) => setTimeout(r, 100));
  await pub.publish(signed({ kind: 9992 }, sk));
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(c.frames.some((f) => f[0] === 'EVENT' && f[1] === 'sub'), 'no events after CLOSE');
  await c.close();
  await pub.close();
});

t.test('ephemeral events are delivered live and never stored', async (t) => {
  const sub = await RawClient.connect(relay.url);
  const sk = generateSecretKey();
  await sub.subscribe('eph', { kinds: [20001], authors: [getPublicKey(sk)] });
  const pub = await RawClient.connect(relay.url);
  const e = signed({ kind: 20001 }, sk);
  t.same(await pub.publish(e), { ok: true, message: '' });
  const live = await sub.next((f) => f[0] === 'EVENT' && f[1] === 'eph');
  t.equal((live[2] as { id: string }).id, e.id, 'delivered live');
  const later = await pub.query('eph2', { ids: [e.id] });
  t.same(later.events, [], 'not stored');
  await sub.close();
  await pub.close();
});

t.test('replaceable and addressable events keep the newest; older ones are refused', async (t) => {
  const c = await RawClient.connect(relay.url);
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  const t0 = now() - 100;
  const v1 = signed({ kind: 10002, created_at: t0, content: 'v1' }, sk);
  const v2 = signed({ kind: 10002, created_at: t0 + 5, content: 'v2' }, sk);
  t.equal((await c.publish(v1)).ok, true);
  t.equal((await c.publish(v2)).ok, true);
  const older = await c.publish(signed({ kind: 10002, created_at: t0 + 1, content: 'older' }, sk));
  t.equal(older.ok, false, 'an older replaceable is refused');
  let r = await c.query('r', { kinds: [10002], authors: [pk] });
  t.same(r.events.map((e) => e.content), ['v2'], 'only the newest replaceable is served');

  const a1 = signed({ kind: 30023, created_at: t0, tags: [['d', 'post']], content: 'a1' }, sk);
  const a2 = signed({ kind: 30023, created_at: t0 + 5, tags: [['d', 'post']], content: 'a2' }, sk);
  const other = signed({ kind: 30023, created_at: t0, tags: [['d', 'other']], content: 'other' }, sk);
  for (const e of [a1, a2, other]) t.equal((await c.publish(e)).ok, true);
  r = await c.query('ad', { kinds: [30023], authors: [pk] });
  t.same(r.events.map((e) => e.content).sort(), ['a2', 'other'], 'addressable keyed by d tag');

  // Equal created_at: the lowest id wins, whatever the arrival order.
  const x = signed({ kind: 10003, created_at: t0, content: 'x' }, sk);
  const y = signed({ kind: 10003, created_at: t0, content: 'y' }, sk);
  const [low, high] = x.id < y.id ? [x, y] : [y, x];
  t.equal((await c.publish(high)).ok, true);
  t.equal((await c.publish(low)).ok, true, 'the lower id replaces on a tie');
  t.equal((await c.publish(high)).ok, false, 'the higher id is refused on a tie');
  r = await c.query('tie', { kinds: [10003], authors: [pk] });
  t.same(r.events.map((e) => e.id), [low.id]);
  await c.close();
});

t.test('NIP-09 deletion: by id and by a-tag, same author only, re-submission refused', async (t) => {
  const c = await RawClient.connect(relay.url);
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  const note = signed({ content: 'to delete' }, sk);
  t.equal((await c.publish(note)).ok, true);
  const del = signed({ kind: 5, tags: [['e', note.id]] }, sk);
  t.equal((await c.publish(del)).ok, true);
  let r = await c.query('d1', { ids: [note.id, del.id] });
  t.same(r.events.map((e) => e.id), [del.id], 'deleted event gone, deletion event kept');
  const again = await c.publish(note);
  t.equal(again.ok, false, 're-submission of a deleted event is refused');

  const mallory = generateSecretKey();
  const victim = signed({ content: 'not yours' }, sk);
  t.equal((await c.publish(victim)).ok, true);
  await c.publish(signed({ kind: 5, tags: [['e', victim.id]] }, mallory));
  r = await c.query('d2', { ids: [victim.id] });
  t.equal(r.events.length, 1, "cannot delete other people's events");

  const t0 = now() - 50;
  const art = signed({ kind: 30001, created_at: t0, tags: [['d', 'doc']] }, sk);
  t.equal((await c.publish(art)).ok, true);
  const delA = signed({ kind: 5, created_at: t0 + 10, tags: [['a', `30001:${pk}:doc`]] }, sk);
  t.equal((await c.publish(delA)).ok, true);
  r = await c.query('d3', { kinds: [30001], authors: [pk] });
  t.same(r.events, [], 'a-tag deletion removes older versions');
  const newer = signed({ kind: 30001, created_at: t0 + 20, tags: [['d', 'doc']] }, sk);
  t.equal((await c.publish(newer)).ok, true, 'a newer version after the deletion is accepted');
  r = await c.query('d4', { kinds: [30001], authors: [pk] });
  t.same(r.events.map((e) => e.id), [newer.id]);
  await c.close();
});

t.test('NIP-40: expired submissions refused, expiring events not served after expiry', async (t) => {
  const c = await RawClient.connect(relay.url);
  const expired = signed({ tags: [['expiration', String(now() - 10)]] });
  const r = await c.publish(expired);
  t.equal(r.ok, false);
  t.match(r.message, /^invalid:.*expired/);
  const soon = signed({ tags: [['expiration', String(now() + 2)]] });
  t.equal((await c.publish(soon)).ok, true);
  t.equal((await c.query('x1', { ids: [soon.id] })).events.length, 1, 'served before expiry');
  await new Promise((res) => setTimeout(res, 3100));
  t.equal((await c.query('x2', { ids: [soon.id] })).events.length, 0, 'not served after expiry');
  await c.close();
});

t.test('advertised limits are enforced', async (t) => {
  const res = await fetch(relay.url.replace('ws:', 'http:'), { headers: { accept: 'application/nostr+json' } });
  t.equal(res.headers.get('access-control-allow-origin'), '*', 'CORS header');
  const info = (await res.json()) as { limitation: Record<string, number>; supported_nips: number[] };
  t.equal(info.limitation.max_subscriptions, 5);
  t.equal(info.limitation.max_filters, 3);
  t.equal(info.limitation.max_limit, 50);
  t.ok(info.supported_nips.includes(1) && info.supported_nips.includes(11));

  const c = await RawClient.connect(relay.url);
  let r = await c.query('x'.repeat(info.limitation.max_subid_length! + 1), {});
  t.match(r.closed, /^invalid:.*subscription id/, 'long sub id');
  r = await c.query('many', {}, {}, {}, {});
  t.match(r.closed, /^invalid:.*filters/, 'too many filters');
  for (let i = 0; i < 5; i++) t.ok((await c.subscribe(`s${i}`, { limit: 0 })).eose);
  r = await c.subscribe('s5', { limit: 0 });
  t.match(r.closed, /^blocked:.*subscriptions/, 'too many subscriptions');
  t.ok((await c.subscribe('s0', { limit: 0 })).eose, 'replacing an existing id is not a new subscription');
  const big = await c.publish(signed({ content: 'x'.repeat(5001) }));
  t.match(big.message, /^invalid: content/, 'content length');
  c.send(JSON.stringify(['EVENT', signed({ content: 'y'.repeat(30000) })]));
  const notice = await c.next((f) => f[0] === 'NOTICE');
  t.match(notice[1], /^invalid: message is \d+ bytes/, 'oversized message gets a NOTICE');
  t.ok((await c.query('s1', { limit: 0 })).eose, 'connection survives');
  await c.close();
});

t.test('malformed input gets clear answers and the connection survives', async (t) => {
  const c = await RawClient.connect(relay.url);
  const expectNotice = async (frame: string, pattern: RegExp, what: string) => {
    c.send(frame);
    const n = await c.next((f) => f[0] === 'NOTICE' || f[0] === 'OK' || f[0] === 'CLOSED');
    t.match(String(n[n.length - 1]), pattern, what);
  };
  await expectNotice('not json', /^invalid:/, 'not JSON');
  await expectNotice('{"a":1}', /^invalid:/, 'not an array');
  await expectNotice('[]', /^invalid:/, 'empty array');
  await expectNotice('[1,2]', /^invalid:/, 'type not a string');
  await expectNotice('["HELLO"]', /^invalid: unknown message type/, 'unknown type');
  await expectNotice('["EVENT"]', /^invalid:/, 'EVENT without event');
  await expectNotice('["EVENT", {"id": 5}]', /^invalid:/, 'EVENT with wrong types');
  await expectNotice('["REQ", 5, {}]', /^invalid:/, 'REQ with a numeric sub id');
  await expectNotice('["REQ", "f1", {"kinds": "1"}]', /^invalid:/, 'kinds not an array');
  await expectNotice('["REQ", "f2", {"ids": ["zz"]}]', /^invalid:/, 'bad id in filter');
  await expectNotice('["REQ", "f3", {"limit": -5}]', /^invalid:/, 'negative limit');
  await expectNotice('["REQ", "f4", {"since": 1e400}]', /^invalid:/, 'non-finite since');
  await expectNotice(JSON.stringify(['REQ', 'f5', { kinds: Array.from({ length: 1001 }, (_, i) => i) }]), /^invalid: kinds has more than/, 'huge list');
  await expectNotice('["REQ", "f6", "not a filter"]', /^invalid:/, 'filter not an object');
  await expectNotice('["CLOSE"]', /^invalid:/, 'CLOSE without id');
  const ok = await c.publish(signed());
  t.equal(ok.ok, true, 'connection still works after all that');
  await c.close();
});

t.test('admin API: health, status, metrics, recent events, prometheus', async (t) => {
  const health = await relay.admin<{ status: string }>('/health');
  t.equal(health.status, 200);
  const status = await relay.admin<{ mode: string; cache: string; database: { state: string }; redis: { state: string }; version: string }>('/admin/status');
  t.equal(status.body.mode, 'normal');
  t.equal(status.body.cache, 'ok');
  t.equal(status.body.database.state, 'up');
  t.equal(status.body.redis.state, 'up');
  const metrics = await relay.admin<{ publishToOkMs: { p50: number; p99: number }; signatureFailures: number; connections: number }>('/admin/metrics');
  t.ok(metrics.body.publishToOkMs.p99 > 0, 'latency percentiles measured');
  t.ok(metrics.body.signatureFailures >= 2, 'signature failures counted');
  const recent = await relay.admin<{ events: Array<{ id: string; source: string }> }>('/admin/events/recent');
  t.ok(recent.body.events.length > 0 && recent.body.events[0]!.source === 'client');
  const prom = await relay.admin<string>('/metrics');
  t.match(prom.body, /relay_events_received_total/);
  const missing = await relay.admin('/admin/nope');
  t.equal(missing.status, 404);
});

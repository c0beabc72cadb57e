/** ws links: WebSocket and HTTP pass through; message faults seen by ws and nostr-tools clients; seeded replay. */
import t from 'tap';
import { generateSecretKey, finalizeEvent, verifyEvent } from 'nostr-tools/pure';
import { call, collect, portOf, quantile, sidecar, sleep, wsEchoServer, wsOpen } from './helpers.js';
import net from 'node:net';
import { once } from 'node:events';

const relay = await wsEchoServer();
t.teardown(() => relay.close());

async function withLink(seed = 42) {
  const sc = await sidecar({ seed, links: [{ name: 'peer-b', listen: '127.0.0.1:0', upstream: `127.0.0.1:${relay.port}`, protocol: 'ws', enabled: true }] });
  return { sc, port: portOf(sc.sidecar.links.get('peer-b')!.spec().listen) };
}

const sk = generateSecretKey();
const event = (i: number) => finalizeEvent({ kind: 1, created_at: 1700000000 + i, tags: [], content: `hello ${i}` }, sk);

t.test('WebSocket messages, subprotocol and a plain HTTP (NIP-11) GET pass through', async (t) => {
  const { sc, port } = await withLink();
  t.teardown(() => sc.close());
  const ws = await wsOpen(port, ['nostr']);
  t.equal(ws.protocol, 'nostr', 'subprotocol chosen by the relay reaches the client');
  const got = collect(ws, 200);
  ws.send(JSON.stringify(['REQ', 'sub1', {}]));
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  t.same(await got, ['["REQ","sub1",{}]', '\u0001\u0002\u0003']);
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { accept: 'application/nostr+json' } });
  t.equal(res.status, 200);
  t.same(await res.json(), { name: 'test relay', accept: 'application/nostr+json' }, 'NIP-11 document via http-proxy');
  // Close frames both ways: what the far end receives, not the proxy's own echo of the client's frame.
  const closesBefore = relay.closes.length;
  const closed = once(ws, 'close');
  ws.close(4001, 'bye');
  await closed;
  for (let i = 0; i < 100 && relay.closes.length === closesBefore; i++) await sleep(20);
  t.same(relay.closes.slice(closesBefore), [{ code: 4001, reason: 'bye' }], "the client's close code and reason reach the relay");
  const ws2 = await wsOpen(port, ['nostr']);
  const closed2 = once(ws2, 'close');
  ws2.send('close:4002:relay says bye');
  const [code, reason] = (await closed2) as [number, Buffer];
  t.same([code, reason.toString()], [4002, 'relay says bye'], "the relay's close code and reason reach the client");
});

t.test('latency on ws messages is measured from outside', async (t) => {
  const { sc, port } = await withLink();
  t.teardown(() => sc.close());
  await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { type: 'latency', stream: 'upstream', attributes: { latency: 50 } });
  const ws = await wsOpen(port);
  const rtts: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const p = once(ws, 'message');
    ws.send(`m${i}`);
    await p;
    rtts.push(performance.now() - t0);
  }
  const p50 = quantile(rtts, 0.5);
  t.ok(p50 >= 49 && p50 < 500, `p50 ${p50.toFixed(1)} ms for 50 ms`);
  ws.close();
});

t.test('loss drops about the asked share, and the same seed drops the same messages', async (t) => {
  const run = async (seed: number) => {
    const { sc, port } = await withLink(seed);
    await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { type: 'loss', stream: 'upstream', attributes: { probability: 0.2 } });
    const ws = await wsOpen(port);
    const got = collect(ws, 800);
    for (let i = 0; i < 500; i++) ws.send(String(i));
    const kept = (await got).map(Number);
    ws.close();
    await sc.close();
    return kept;
  };
  const a = await run(42);
  const b = await run(42);
  const c = await run(43);
  t.ok(a.length > 350 && a.length < 450, `${500 - a.length} of 500 dropped at 20 %`);
  t.same(a, b, 'same seed, same traffic: same messages dropped');
  t.not(a.join(','), c.join(','), 'another seed drops others');
});

t.test('duplicate and reorder', async (t) => {
  const { sc, port } = await withLink();
  t.teardown(() => sc.close());
  await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { name: 'dup', type: 'duplicate', stream: 'downstream', attributes: { probability: 1, copies: 2 } });
  const ws = await wsOpen(port);
  let got = collect(ws, 300);
  ws.send('once');
  t.same(await got, ['once', 'once', 'once'], 'each message thrice');
  await call(sc.apiUrl, 'DELETE', '/proxies/peer-b/toxics/dup');
  await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { type: 'reorder', stream: 'upstream', attributes: { probability: 0.5, gap: 2, max_delay: 50 } });
  got = collect(ws, 600);
  const sent = Array.from({ length: 50 }, (_, i) => String(i));
  for (const m of sent) ws.send(m);
  const out = await got;
  t.same([...out].sort(), [...sent].sort(), 'nothing lost');
  t.not(out.join(','), sent.join(','), 'but out of order');
  ws.close();
});

t.test('Nostr-aware corrupt: tampered events fail signature checks, other frames pass', async (t) => {
  const { sc, port } = await withLink();
  t.teardown(() => sc.close());
  const ws = await wsOpen(port);
  const n0 = relay.received.length;
  for (const target of ['sig', 'content']) {
    await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { name: 'byz', type: 'corrupt', stream: 'upstream', attributes: { mode: 'nostr', target } });
    const got = collect(ws, 400);
    const ev = event(target.length);
    t.ok(verifyEvent(ev), 'the event verifies before the sidecar');
    ws.send(JSON.stringify(['EVENT', ev]));
    ws.send(JSON.stringify(['REQ', 's', { kinds: [1] }]));
    const frames = await got;
    const relayed = JSON.parse(frames[0]!);
    t.equal(relayed[0], 'EVENT', 'still a valid EVENT frame');
    t.equal(relayed[1].id, ev.id, 'id kept');
    t.notOk(verifyEvent({ ...relayed[1] }), `${target} tampered: signature check fails`);
    t.equal(frames[1], '["REQ","s",{"kinds":[1]}]', 'non-EVENT frames untouched');
    await call(sc.apiUrl, 'DELETE', '/proxies/peer-b/toxics/byz');
  }
  t.ok(relay.received.length >= n0 + 4, 'the relay received the tampered frames');
  await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { name: 'garble', type: 'corrupt', stream: 'downstream', attributes: { mode: 'json' } });
  const got = collect(ws, 400);
  ws.send(JSON.stringify(['EVENT', 'sub', event(9)]));
  const [frame] = await got;
  t.throws(() => JSON.parse(frame!), 'json mode: the frame no longer parses');
  ws.close();
});

t.test('partition on a ws link refuses new peers and freezes open ones until healed', async (t) => {
  const { sc, port } = await withLink();
  t.teardown(() => sc.close());
  const ws = await wsOpen(port);
  await call(sc.apiUrl, 'POST', '/proxies/peer-b/toxics', { name: 'cut', type: 'partition', stream: 'both' });
  const s = net.connect(port, '127.0.0.1');
  const err = await new Promise<string>((r) => { s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')); s.on('close', () => r('closed')); });
  t.equal(err, 'ECONNRESET', 'new peer connection refused');
  const got = collect(ws, 300, 300);
  ws.send('during');
  t.same(await got, [], 'nothing crosses the partition');
  const after = collect(ws, 200);
  await call(sc.apiUrl, 'DELETE', '/proxies/peer-b/toxics/cut');
  t.same(await after, ['during'], 'held message delivered when healed');
  ws.close();
  await sleep(10);
});

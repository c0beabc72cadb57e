// A client floods REQs (each a 50-event query over a seeded table). The relay answers every one, runs only
// what the per-connection bucket lets through (CLOSED "rate-limited:" for the rest, counted), an honest client
// on another connection still gets EOSE quickly, and the relay stays in normal mode. Also: the per-IP bucket
// across connections, and the query slots (per connection and global) never deadlock or leak.
import t from 'tap';
import WebSocket from 'ws';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { assertHonestP99, honestPublishes } from './helpers/honest-latency.js';

const FLOOD = 3000;
const SEEDED = 1500;
/** Defaults: 20 REQs/s per connection, bursts of 50. */
const RATE = 20;
const BURST = 50;

let relay: RelayProcess;
let strict: RelayProcess;
let subs: RelayProcess;
t.before(async () => {
  [relay, strict, subs] = await Promise.all([
    startRelay(),
    startRelay({ args: ['--req-rate-per-ip', '10', '--max-queries', '2', '--max-queries-per-connection', '1'] }),
    startRelay({ args: ['--max-subscriptions-per-ip', '5'] }),
  ]);
  const seeder = await RawClient.connect(relay.url);
  for (let i = 0; i < SEEDED; i += 100) {
    const batch = Array.from({ length: 100 }, (_, j) => signed({ content: `seed ${i + j} ${'x'.repeat(200)}` }));
    const oks = await Promise.all(batch.map((e) => seeder.publish(e, 30_000)));
    if (!oks.every((o) => o.ok)) throw new Error(`seeding failed: ${JSON.stringify(oks.find((o) => !o.ok))}`);
  }
  await seeder.close();
});
t.teardown(async () => {
  await Promise.all([relay?.stop(), strict?.stop(), subs?.stop()]);
  await Promise.all([relay?.cleanup(), strict?.cleanup(), subs?.cleanup()]);
});

async function metric(r: RelayProcess, prefix: string): Promise<number> {
  const body = (await r.admin<string>('/metrics')).body;
  const line = body.split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** A client whose frame listener is attached before open, from a chosen local address. */
async function connectFrom(url: string, localAddress: string): Promise<RawClient> {
  const ws = new WebSocket(url, { localAddress });
  const client = new (RawClient as unknown as new (ws: WebSocket) => RawClient)(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

t.test('a REQ flood from one connection is limited; an honest client is still served', async (t) => {
  const baseline = await honestPublishes(relay.url);
  const flooder = await RawClient.connect(relay.url);
  const answers = { eose: 0, rateLimited: 0, otherClosed: 0, events: 0 };
  const otherReasons = new Set<string>();
  let sent = 0;
  // A closed loop keeping 20 REQs (max_subscriptions) outstanding: each answer sends the next REQ at once. Each
  // asks for the 50 newest events of the seeded table (enough to be real work; 500 made the file take minutes on a busy machine).
  const next = () => {
    if (sent >= FLOOD) return;
    flooder.send(['REQ', `f${sent}`, { kinds: [1], limit: 50 }]);
    sent++;
  };
  const done = new Promise<void>((resolve) => {
    flooder.ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as unknown[];
      if (f[0] === 'EVENT') return void answers.events++;
      if (f[0] === 'EOSE') {
        answers.eose++;
        flooder.send(['CLOSE', f[1]]);
      } else if (f[0] === 'CLOSED' && String(f[2]).startsWith('rate-limited:')) answers.rateLimited++;
      else if (f[0] === 'CLOSED') (answers.otherClosed++, otherReasons.add(String(f[2])));
      else return;
      if (answers.eose + answers.rateLimited + answers.otherClosed >= FLOOD) resolve();
      else next();
    });
  });
  const started = Date.now();
  for (let i = 0; i < 20; i++) next();
  // While the flood is being answered, an honest client on another connection.
  const honest = await RawClient.connect(relay.url);
  const asked = Date.now();
  const got = await honest.query('honest', { kinds: [1], limit: 100 });
  const honestMs = Date.now() - asked;
  t.ok(got.eose, 'the honest client gets EOSE');
  t.equal(got.events.length, 100);
  t.ok(honestMs < 10_000, `honest EOSE after ${honestMs} ms (bound 10 s)`);
  await honest.close();
  const flooding = answers.eose + answers.rateLimited + answers.otherClosed < FLOOD;
  assertHonestP99(t, baseline, await honestPublishes(relay.url), 'the REQ flood');
  t.ok(flooding, 'the flood was still running when the honest publishes began');

  // Every REQ gets an answer: EOSE or CLOSED.
  await Promise.race([done, new Promise((r) => setTimeout(r, 120_000))]);
  t.equal(answers.eose + answers.rateLimited + answers.otherClosed, FLOOD, 'every REQ answered');
  const elapsed = (Date.now() - started) / 1000;
  t.ok(answers.rateLimited >= FLOOD - BURST - RATE * elapsed - 50, `${answers.rateLimited} of ${FLOOD} refused rate-limited: (${answers.eose} EOSE, ${answers.events} events, in ${elapsed.toFixed(1)} s)`);
  t.ok(answers.eose <= BURST + RATE * elapsed + 5, `at most burst + rate x time REQs ran (${answers.eose})`);
  t.same([...otherReasons], [], 'no other refusals');
  t.equal(flooder.closeCode, undefined, 'the flooder is told, not disconnected');
  await flooder.close();

  t.ok((await metric(relay, 'relay_reqs_received_total')) >= FLOOD + 1, 'every REQ counted');
  t.equal(await metric(relay, 'relay_client_refusals_total{reason="req-rate-connection"}'), answers.rateLimited, 'refusals counted');
  t.equal((await relay.admin<{ mode: string }>('/admin/status')).body.mode, 'normal', 'the relay stays in normal mode');
  t.equal(await metric(relay, 'relay_req_queries_running'), 0, 'every query slot released');
});

t.test('the per-IP bucket limits REQs across connections from one address only', async (t) => {
  // strict: 10 REQs/s per IP, bursts of 20. Three connections from 127.0.0.5, 20 REQs each.
  const clients = await Promise.all([0, 1, 2].map(() => connectFrom(strict.url, '127.0.0.5')));
  const results = await Promise.all(clients.flatMap((c, ci) => Array.from({ length: 20 }, (_, i) => c.query(`ip${ci}-${i}`, { kinds: [1], limit: 1 }))));
  const limited = results.filter((r) => r.closed?.startsWith('rate-limited:') && /from your address/.test(r.closed)).length;
  t.ok(limited >= 60 - 20 - 10, `${limited} of 60 refused by the per-IP bucket`);
  t.ok(results.filter((r) => r.eose).length >= 20, 'the burst was served');
  const other = await connectFrom(strict.url, '127.0.0.6');
  t.ok((await other.query('other', { kinds: [1], limit: 1 })).eose, 'another address is unaffected');
  await Promise.all([...clients, other].map((c) => c.close()));
  t.ok((await metric(strict, 'relay_client_refusals_total{reason="req-rate-ip"}')) >= limited);
});

t.test('query slots: 2 global, 1 per connection; 8 connections x 3 REQs all finish, slots released', async (t) => {
  const clients = await Promise.all(Array.from({ length: 8 }, (_, i) => connectFrom(strict.url, `127.0.1.${i + 1}`)));
  const results = await Promise.all(clients.flatMap((c, ci) => [0, 1, 2].map((i) => c.query(`q${ci}-${i}`, { kinds: [1], limit: 50 }))));
  t.equal(results.filter((r) => r.eose).length, 24, 'every REQ reached EOSE (waiting queries got their turn)');
  await Promise.all(clients.map((c) => c.close()));
  t.equal(await metric(strict, 'relay_req_queries_running'), 0, 'no slot leaked');
  t.equal(await metric(strict, 'relay_req_queries_waiting'), 0, 'nobody left waiting');
});

t.test('open subscriptions are bounded per IP across connections', async (t) => {
  // subs: 5 open subscriptions per IP.
  const [c1, c2] = await Promise.all([connectFrom(subs.url, '127.0.0.7'), connectFrom(subs.url, '127.0.0.7')]);
  for (let i = 0; i < 3; i++) t.ok((await c1.subscribe(`a${i}`, { kinds: [30000 + i] })).eose, `c1 sub ${i}`);
  t.ok((await c2.subscribe('b0', { kinds: [30100] })).eose);
  t.ok((await c2.subscribe('b1', { kinds: [30101] })).eose, 'the fifth subscription from this address');
  const sixth = await c2.subscribe('b2', { kinds: [30102] });
  t.match(sixth.closed, /^blocked: too many subscriptions from your address \(the limit is 5\)/, 'the sixth is refused');
  t.ok((await c2.subscribe('b1', { kinds: [30103] })).eose, 'replacing an open subscription is not a new one');
  c1.send(['CLOSE', 'a0']);
  await new Promise((r) => setTimeout(r, 200));
  t.ok((await c2.subscribe('b2', { kinds: [30102] })).eose, 'after a CLOSE there is room again');
  await c1.close();
  await new Promise((r) => setTimeout(r, 200));
  t.ok((await c2.subscribe('b3', { kinds: [30104] })).eose, 'a closed connection gives its subscriptions back');
  const other = await connectFrom(subs.url, '127.0.0.8');
  t.ok((await other.subscribe('o', { kinds: [1] })).eose, 'another address is unaffected');
  await Promise.all([c2.close(), other.close()]);
  t.ok((await metric(subs, 'relay_client_refusals_total{reason="req-subscriptions-ip"}')) >= 1, 'counted');
});

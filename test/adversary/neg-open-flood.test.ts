// NIP-77 from a client that is not a proven peer (any key may AUTH, so AUTH alone proves nothing): a client gets
// limits.negentropy_client_sessions sessions of at most limits.negentropy_client_max_records records, instead of
// a peer's 8 sessions of up to a million rows each. Refusals are NEG-ERR with a reason, counted.
import t from 'tap';
import { nip77 } from 'nostr-tools';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { assertHonestP99, honestPublishes } from './helpers/honest-latency.js';

const { Negentropy, NegentropyStorageVector } = nip77;

const CAP = 100;
let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay({ args: ['--negentropy-client-max-records', String(CAP), '--negentropy-client-sessions', '1'] });
  const seeder = await RawClient.connect(relay.url);
  const events = Array.from({ length: CAP + 50 }, (_, i) => signed({ kind: i < 60 ? 7 : 1, content: `neg ${i}` }));
  for (const e of events) if (!(await seeder.publish(e)).ok) throw new Error('seeding failed');
  await seeder.close();
});
t.teardown(async () => {
  await relay?.stop();
  await relay?.cleanup();
});

/** An empty initiator's first message: asks for everything matching. */
function firstMessage(): string {
  const storage = new NegentropyStorageVector();
  storage.seal();
  return new Negentropy(storage, 60_000).initiate();
}

t.test('a client NEG-OPEN over the client record cap is refused; a narrower filter works', async (t) => {
  const c = await RawClient.connect(relay.url);
  c.send(['NEG-OPEN', 'all', {}, firstMessage()]);
  const err = await c.next((f) => f[0] === 'NEG-ERR' && f[1] === 'all');
  t.match(err[2], new RegExp(`^blocked: too many records \\(the limit is ${CAP} for clients\\)`));
  c.send(['NEG-OPEN', 'reactions', { kinds: [7] }, firstMessage()]);
  const ok = await c.next((f) => (f[0] === 'NEG-MSG' || f[0] === 'NEG-ERR') && f[1] === 'reactions');
  t.equal(ok[0], 'NEG-MSG', 'a session under the cap opens');
  c.send(['NEG-OPEN', 'second', { kinds: [7] }, firstMessage()]);
  const second = await c.next((f) => f[0] === 'NEG-ERR' && f[1] === 'second');
  t.match(second[2], /^blocked: too many negentropy sessions \(the limit is 1\)/, 'one session at a time for a client');
  c.send(['NEG-CLOSE', 'reactions']);
  c.send(['NEG-OPEN', 'third', { kinds: [7] }, firstMessage()]);
  t.equal((await c.next((f) => (f[0] === 'NEG-MSG' || f[0] === 'NEG-ERR') && f[1] === 'third'))[0], 'NEG-MSG', 'after NEG-CLOSE the slot is free');
  await c.close();
  const body = (await relay.admin<string>('/metrics')).body;
  const line = body.split('\n').find((l) => l.startsWith('relay_client_refusals_total{reason="neg-open-client"}'));
  t.equal(Number(line?.split(' ').at(-1)), 2, `counted: ${line}`);
});

t.test('NEG-OPENs sent together cannot all pass the session count while records load', async (t) => {
  const c = await RawClient.connect(relay.url);
  // One TCP write, so the relay reads all five before any records query returns.
  const socket = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
  socket.cork();
  for (let i = 0; i < 5; i++) c.send(['NEG-OPEN', `together${i}`, { kinds: [7] }, firstMessage()]);
  process.nextTick(() => socket.uncork());
  const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => c.next((f) => (f[0] === 'NEG-MSG' || f[0] === 'NEG-ERR') && f[1] === `together${i}`)));
  t.equal(answers.filter((f) => f[0] === 'NEG-MSG').length, 1, 'one session opened (the client limit is 1)');
  t.equal(answers.filter((f) => f[0] === 'NEG-ERR' && /too many negentropy sessions/.test(String(f[2]))).length, 4);
  await c.close();
});

t.test('flooding NEG-OPENs is answered, bounded, and the relay keeps serving', async (t) => {
  const baseline = await honestPublishes(relay.url);
  const c = await RawClient.connect(relay.url);
  for (let i = 0; i < 200; i++) c.send(['NEG-OPEN', `s${i}`, {}, firstMessage()]);
  const honestDuring = honestPublishes(relay.url);
  const reasons = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const f = await c.next((x) => (x[0] === 'NEG-ERR' || x[0] === 'NEG-MSG') && x[1] === `s${i}`, 30_000);
    const reason = f[0] === 'NEG-MSG' ? 'opened' : String(f[2]).split(' (', 1)[0]!;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  t.equal(reasons.get('opened'), undefined, `no oversized session opened: ${JSON.stringify([...reasons])}`);
  t.ok((reasons.get('rate-limited: more than 20 REQs per second on this connection') ?? 0) >= 100, 'past the REQ burst, NEG-OPENs are rate-limited (they share the REQ bucket)');
  assertHonestP99(t, baseline, await honestDuring, 'the NEG-OPEN flood');
  const reader = await RawClient.connect(relay.url);
  t.ok((await reader.query('after', { limit: 5 })).eose, 'still serving');
  await Promise.all([c.close(), reader.close()]);
});

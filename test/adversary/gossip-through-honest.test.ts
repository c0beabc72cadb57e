// Partition on demand through an honest relay: an anonymous client publishes malformed kind-20780 gossip to
// relay A. A must refuse it (OK false with a reason) and charge the client, never forward it, and B must never
// blame A for it: no ban between the honest relays, the link stays up. Malformed gossip that reaches a relay
// through a peer anyway is charged to its author's key, not to the relaying peer.
import t from 'tap';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { gossipOf, nodeIdOf, peersOf, startNetwork, waitFor, type Network } from '../helpers/cluster.js';
import { craft, fastSign, NostrLink } from '../helpers/malicious-node.js';

const GOSSIP_KIND = 20780;
// A node on A's and B's allow-lists, standing for a compromised (or buggy) peer that relays what it is given.
const relayerKey = generateSecretKey();
const relayerId = getPublicKey(relayerKey);

let net: Network;
t.before(async () => {
  net = await startNetwork({ names: ['a', 'b'], args: ['--peer-node-ids', relayerId] });
});
t.teardown(async () => {
  await net?.stop();
});

const a = () => net.node('a').relay;
const b = () => net.node('b').relay;

interface ScoresBody {
  scores: Array<{ subject: string; type: string; score: number; offences: Record<string, number>; banned: boolean }>;
}
interface BansBody {
  bans: Array<{ subject: string; reason: string }>;
}

const bothUp = async () => {
  const [pa, pb] = await Promise.all([peersOf(a()), peersOf(b())]);
  return pa.length === 1 && pb.length === 1 && pa[0]!.state === 'up' && pb[0]!.state === 'up' && pa[0]!.nodeId !== null && pb[0]!.nodeId !== null;
};

t.test('8 malformed ephemeral gossip events from an anonymous client: refused and charged by A; no ban, link up', async (t) => {
  await waitFor('both links up with proven node ids', bothUp, 60_000);
  const aId = await nodeIdOf(a());
  const bLogsFrom = b().logs.length;

  const attacker = await NostrLink.connect(a().url, { localAddress: '127.0.0.2' });
  const answers = [];
  for (let i = 0; i < 8; i++) {
    const event = fastSign({ kind: GOSSIP_KIND, created_at: Math.floor(Date.now() / 1000), tags: [], content: 'x' }, generateSecretKey());
    answers.push(await attacker.publish(event));
  }
  t.ok(answers.slice(0, 4).every((r) => !r.ok && /^invalid: malformed gossip/.test(r.message)), `A refuses the gossip with a reason: ${JSON.stringify(answers[0])}`);
  t.ok(answers.every((r) => !r.ok), 'none of the 8 is accepted');

  // Give B every chance to misbehave: several heartbeat intervals and a gossip round.
  await new Promise((r) => setTimeout(r, 4000));
  const bBans = (await b().admin<BansBody>('/admin/bans')).body.bans;
  t.same(bBans, [], 'B bans nobody');
  const aOnB = (await b().admin<ScoresBody>('/admin/reputation/scores')).body.scores.find((s) => s.subject === aId);
  t.ok(!aOnB || (aOnB.score === 100 && !aOnB.offences.gossip), `A keeps a clean score on B: ${JSON.stringify(aOnB)}`);
  t.notOk(b().logs.slice(bLogsFrom).some((l) => /malformed gossip|reputation fell/.test(String(l.msg))), 'B never saw the malformed gossip');
  t.ok(await bothUp(), 'the link between A and B stays up');
  t.equal((await gossipOf(b())).partitioned, false, 'B sees no partition');

  const attackerOnA = (await a().admin<ScoresBody>('/admin/reputation/scores')).body.scores.find((s) => s.subject === '127.0.0.2');
  t.ok(attackerOnA && (attackerOnA.offences.gossip ?? 0) >= 5, `the client is charged on A: ${JSON.stringify(attackerOnA)}`);
  t.equal(attackerOnA?.banned, true, 'and banned by A (five malformed gossip events take it to the threshold)');
  t.same((await a().admin<BansBody>('/admin/bans')).body.bans.map((x) => x.subject), ['127.0.0.2'], 'A bans the client address, nothing else');
  await attacker.close();
});

t.test('well-formed gossip from a client is refused too: gossip is relay-to-relay traffic', async (t) => {
  const client = await NostrLink.connect(b().url, { authenticate: false });
  const content = JSON.stringify({ v: 1, seq: Date.now(), url: 'ws://evil.example:1', links: [], members: [{ nodeId: 'f'.repeat(64), url: 'ws://evil.example:2', status: 'up', lastHeard: null }] });
  const r = await client.publish(fastSign({ kind: GOSSIP_KIND, created_at: Math.floor(Date.now() / 1000), tags: [], content }, generateSecretKey()));
  t.equal(r.ok, false);
  t.match(r.message, /^restricted: /, r.message);
  t.notOk((await gossipOf(b())).members.some((m) => JSON.stringify(m).includes('f'.repeat(64))), 'its fake member is not learned');
  await client.close();
});

t.test('malformed gossip relayed by a peer is charged to its author, not to the relaying peer', async (t) => {
  const link = await NostrLink.connect(a().url);
  const auth = await link.authenticate(relayerKey, a().url, 5000);
  t.equal(auth?.ok, true, 'the allow-listed node authenticates');
  t.equal(auth?.message, '', 'as a peer');
  const authorKey = generateSecretKey();
  const author = getPublicKey(authorKey);
  const r = await link.publish(fastSign({ kind: GOSSIP_KIND, created_at: Math.floor(Date.now() / 1000), tags: [], content: '{"v":1,"seq":"nope"}' }, authorKey), 'forwarded');
  t.equal(r.ok, false);
  t.match(r.message, /^invalid: malformed gossip/);
  const scores = (await a().admin<ScoresBody>('/admin/reputation/scores')).body.scores;
  t.equal(scores.find((s) => s.subject === author)?.offences.gossip, 1, 'the author key is charged');
  const relayer = scores.find((s) => s.subject === relayerId);
  t.ok(!relayer || !relayer.offences.gossip, `the relaying peer is not: ${JSON.stringify(relayer)}`);
  // A forged event from the peer is still the peer's fault (honest relays verify before forwarding).
  const forged = await link.publish(craft.forged(authorKey), 'forwarded');
  t.match(forged.message, /^invalid: signature/);
  await link.close();
});

// Peer discovery must not make the relay dial attacker-chosen URLs. Off by default; when on, it learns only
// from allow-listed peers, refuses URLs that are not plain ws(s) (credentials), and stops at a cap. Member lists
// from anyone else are ignored, so fake members neither get dialled nor flag a partition.
import { createServer, type Server } from 'node:http';
import t from 'tap';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { gossipOf, waitFor } from '../helpers/cluster.js';
import { fastSign, NostrLink } from '../helpers/malicious-node.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';

const GOSSIP_KIND = 20780;
const peerKey = generateSecretKey();
const peerId = getPublicKey(peerKey);

/** An HTTP server that counts every request (a NIP-11 fetch or a WebSocket upgrade is a dial). */
interface Trap {
  url: string;
  hits: number;
  server: Server;
}
async function trap(): Promise<Trap> {
  const t: Trap = { url: '', hits: 0, server: createServer() };
  t.server.on('request', (_req, res) => {
    t.hits++;
    res.writeHead(404).end();
  });
  t.server.on('upgrade', (_req, socket) => {
    t.hits++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => t.server.listen(0, '127.0.0.1', () => resolve()));
  t.url = `ws://127.0.0.1:${(t.server.address() as { port: number }).port}`;
  return t;
}

const traps: Trap[] = [];
const relays: RelayProcess[] = [];
t.teardown(async () => {
  for (const r of relays) {
    await r.stop();
    await r.cleanup();
  }
  for (const x of traps) x.server.close();
});

function gossip(key: Uint8Array, url: string, members: Array<{ nodeId: string; url: string }>) {
  const content = JSON.stringify({ v: 1, seq: Date.now(), url, links: [], members: members.map((m) => ({ ...m, status: 'up', lastHeard: null })) });
  return fastSign({ kind: GOSSIP_KIND, created_at: Math.floor(Date.now() / 1000), tags: [], content }, key);
}

async function asPeer(relay: RelayProcess): Promise<NostrLink> {
  const link = await NostrLink.connect(relay.url);
  const auth = await link.authenticate(peerKey, relay.url, 5000);
  if (!auth?.ok || auth.message !== '') throw new Error(`not accepted as a peer: ${JSON.stringify(auth)}`);
  return link;
}

const fakeId = () => getPublicKey(generateSecretKey());

t.test('discovery is off by default: an allowed peer announcing URLs gets none dialled', async (t) => {
  const relay = await startRelay({ args: ['--peer-node-ids', peerId, '--heartbeat-interval-ms', '500'] });
  relays.push(relay);
  const [a, b] = [await trap(), await trap()];
  traps.push(a, b);
  const link = await asPeer(relay);
  const r = await link.publish(gossip(peerKey, a.url, [{ nodeId: fakeId(), url: b.url }]), 'forwarded');
  t.equal(r.ok, true, 'the gossip itself is accepted');
  await new Promise((res) => setTimeout(res, 4000));
  t.equal(a.hits + b.hits, 0, 'nothing dialled');
  t.same((await relay.admin<{ peers: unknown[] }>('/admin/peers')).body.peers, [], 'no learned links');
  await link.close();
});

t.test('discovery on: only allowed peers are believed, URLs are validated, learned links are capped', async (t) => {
  const relay = await startRelay({ args: ['--peer-node-ids', peerId, '--peer-discovery', 'true', '--peer-discovery-max-links', '2', '--heartbeat-interval-ms', '500', '--reconnect-min-ms', '200', '--reconnect-max-ms', '500'] });
  relays.push(relay);
  const [fromStranger, strangerMember, withCredentials, first, second, overCap] = await Promise.all(Array.from({ length: 6 }, () => trap()));
  traps.push(fromStranger, strangerMember, withCredentials, first, second, overCap);
  const link = await asPeer(relay);

  // A stranger's gossip relayed by the peer: its URL and its member list are ignored.
  const strangerKey = generateSecretKey();
  const strangerFake = fakeId();
  t.equal((await link.publish(gossip(strangerKey, fromStranger.url, [{ nodeId: strangerFake, url: strangerMember.url }]), 'forwarded')).ok, true);
  await new Promise((res) => setTimeout(res, 2000));
  const view = await gossipOf(relay);
  t.notOk(JSON.stringify(view).includes(strangerFake) || JSON.stringify(view).includes(getPublicKey(strangerKey)), 'neither the stranger nor its fake member becomes a member');
  t.equal(view.partitioned, false, 'no partition is flagged for them');

  // The allowed peer announces a URL with credentials (refused), then three members: two fit under the cap.
  const credentialUrl = withCredentials.url.replace('ws://', 'ws://user:secret@');
  const members = [first, second, overCap].map((x) => ({ nodeId: fakeId(), url: x.url }));
  t.equal((await link.publish(gossip(peerKey, credentialUrl, members), 'forwarded')).ok, true);
  await waitFor('both members under the cap dialled', () => first.hits > 0 && second.hits > 0, 30_000);
  // fetch() refuses URLs with credentials, so a dial of one would only show at its WebSocket attempt, after the
  // NIP-11 retries (3 dials, 200-500 ms apart): wait well past that.
  await new Promise((res) => setTimeout(res, 8000));
  t.equal(withCredentials.hits, 0, 'a URL with credentials is never dialled');
  t.equal(overCap.hits, 0, 'the third member is over the cap (2): not dialled');
  t.equal(fromStranger.hits + strangerMember.hits, 0, "the stranger's URLs were never dialled");
  const learned = (await relay.admin<{ peers: Array<{ origin: string; url: string }> }>('/admin/peers')).body.peers.filter((p) => p.origin === 'learned');
  t.same(learned.map((p) => p.url).sort(), [first.url, second.url].sort(), 'exactly two learned links');
  await link.close();
});

t.test('a client cannot feed discovery at all', async (t) => {
  const relay = relays[1]!;
  const x = await trap();
  traps.push(x);
  const client = await NostrLink.connect(relay.url, { authenticate: false });
  const r = await client.publish(gossip(generateSecretKey(), x.url, [{ nodeId: fakeId(), url: x.url }]));
  t.equal(r.ok, false, r.message);
  await new Promise((res) => setTimeout(res, 2000));
  t.equal(x.hits, 0, 'not dialled');
  await client.close();
});

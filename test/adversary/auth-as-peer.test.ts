// Answering the NIP-42 challenge must not make a key a peer. A random key stays a client with client limits
// (connection, IP), its reputation lands on its address, a second AUTH on the same connection is refused, and a
// banned address does not come back with a fresh key. Only an allow-listed node id becomes a peer.
import { createServer } from 'node:http';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { waitFor } from '../helpers/cluster.js';
import { craft, NostrLink } from '../helpers/malicious-node.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';

const peerKey = generateSecretKey();
const peerId = getPublicKey(peerKey);

let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay({ args: ['--peer-node-ids', peerId, '--rate-limits', 'connection:*:5/10s,ip:*:1000/10s,peer:*:1000/10s'] });
});
t.teardown(async () => {
  await relay?.stop();
  await relay?.cleanup();
});

interface PeersBody {
  inbound: Array<{ nodeId: string }>;
}
interface ScoresBody {
  scores: Array<{ subject: string; offences: Record<string, number>; banned: boolean }>;
}

t.test('a random key answering AUTH stays a client, with client limits', async (t) => {
  const key = generateSecretKey();
  const link = await NostrLink.connect(relay.url, { localAddress: '127.0.0.4' });
  const auth = await link.authenticate(key, relay.url, 5000);
  t.equal(auth?.ok, true, 'the AUTH itself is valid');
  t.match(auth?.message, /client/, `the OK says it is a client: ${auth?.message}`);
  const inbound = (await relay.admin<PeersBody>('/admin/peers')).body.inbound;
  t.notOk(inbound.some((p) => p.nodeId === getPublicKey(key)), 'not listed as an inbound peer');
  const results = [];
  for (let i = 0; i < 10; i++) results.push(await link.publish(craft.valid(key)));
  const accepted = results.filter((r) => r.ok).length;
  t.equal(accepted, 5, 'the connection limit (5/10s) applies, not the peer limit');
  t.ok(results.slice(5).every((r) => /\(connection\)/.test(r.message)), `refused by the connection rule: ${results[9]?.message}`);
  const scores = (await relay.admin<ScoresBody>('/admin/reputation/scores')).body.scores;
  t.ok(scores.some((s) => s.subject === '127.0.0.4' && (s.offences['rate-limit'] ?? 0) > 0), 'the rate-limit hits are charged to its address');
  t.notOk(scores.some((s) => s.subject === getPublicKey(key)), 'nothing lands on the throwaway key');
  t.match((await relay.admin<string>('/metrics')).body, /relay_auth_total\{outcome="client"\} [1-9]/, 'counted as a client AUTH');
  await link.close();
});

t.test('a second AUTH on the same connection is refused and cannot change its role', async (t) => {
  const link = await NostrLink.connect(relay.url, { localAddress: '127.0.0.5' });
  const first = await link.authenticate(generateSecretKey(), relay.url, 5000);
  t.equal(first?.ok, true);
  // The challenge stays the connection's: answer it again, this time with the allow-listed peer key.
  const second = await reauthenticate(link, peerKey);
  t.equal(second.ok, false, 'the second AUTH is refused');
  t.match(second.message, /^blocked: /, second.message);
  const inbound = (await relay.admin<PeersBody>('/admin/peers')).body.inbound;
  t.notOk(inbound.some((p) => p.nodeId === peerId), 'the connection did not become a peer');
  const r = await Promise.all(Array.from({ length: 7 }, () => link.publish(craft.valid(peerKey))));
  t.equal(r.filter((x) => x.ok).length, 5, 'client limits still apply');
  await link.close();
});

t.test('an allow-listed node id becomes a peer; its second AUTH is refused too', async (t) => {
  const link = await NostrLink.connect(relay.url);
  const auth = await link.authenticate(peerKey, relay.url, 5000);
  t.same(auth, { ok: true, message: '' }, 'accepted as a peer');
  const inbound = (await relay.admin<PeersBody>('/admin/peers')).body.inbound;
  t.ok(inbound.some((p) => p.nodeId === peerId), 'listed as an inbound peer');
  const r = await Promise.all(Array.from({ length: 10 }, () => link.publish(craft.valid(peerKey))));
  t.equal(r.filter((x) => x.ok).length, 10, 'the peer budget applies, not the connection limit');
  const again = await reauthenticate(link, generateSecretKey());
  t.equal(again.ok, false, 'a second AUTH is refused');
  await link.close();
});

t.test('an AUTH whose relay tag names another relay is refused', async (t) => {
  const link = await NostrLink.connect(relay.url);
  const auth = await link.authenticate(peerKey, 'ws://other-relay.example:7777', 5000);
  t.equal(auth?.ok, false);
  t.match(auth?.message, /does not name this relay/);
  await link.close();
});

t.test('an AUTH answer signed 11 minutes ago (or ahead) is refused, even from the allow-listed key', async (t) => {
  for (const offset of [-660, 660]) {
    const link = await NostrLink.connect(relay.url);
    const challenge = String((await link.next((f) => f[0] === 'AUTH' && typeof f[1] === 'string'))[1]);
    const auth = finalizeEvent({ kind: 22242, created_at: Math.floor(Date.now() / 1000) + offset, tags: [['relay', relay.url], ['challenge', challenge]], content: '' }, peerKey);
    link.send(['AUTH', auth]);
    const ok = await link.next((f) => f[0] === 'OK' && f[1] === auth.id);
    t.same(ok.slice(2), [false, 'invalid: created_at is too far from now'], `created_at ${offset} s from now`);
    await link.close();
  }
});

t.test('a banned address is refused with a fresh key', async (t) => {
  const key = generateSecretKey();
  const link = await NostrLink.connect(relay.url, { localAddress: '127.0.0.6' });
  t.match((await link.authenticate(key, relay.url, 5000))?.message, /client/);
  for (let i = 0; i < 6 && link.open; i++) await link.publish(craft.forged(key));
  await Promise.race([link.closed, new Promise((r) => setTimeout(r, 5000))]);
  t.equal(link.closeCode, 1008, 'the forger is disconnected');
  const scores = (await relay.admin<ScoresBody>('/admin/reputation/scores')).body.scores;
  t.equal(scores.find((s) => s.subject === '127.0.0.6')?.banned, true, 'its address is banned (not its throwaway key)');
  const fresh = await NostrLink.connect(relay.url, { localAddress: '127.0.0.6' }).then(
    async (l) => {
      const r = await l.authenticate(generateSecretKey(), relay.url, 3000);
      await l.close();
      return `accepted (${JSON.stringify(r)})`;
    },
    (err: Error & { status?: number }) => `refused ${err.status}`,
  );
  t.equal(fresh, 'refused 403', 'a fresh key from the same address is refused at the upgrade');
});

t.test('a dialled relay must prove its node id: NIP-11 claims and relayed proofs are not enough', async (t) => {
  const honestId = (await relay.admin<{ nodeId: string }>('/admin/status')).body.nodeId;
  // A server that claims to be the honest relay (its NIP-11 pubkey, our software) and, asked to prove it, relays
  // the honest relay's own proof (a man in the middle).
  const http = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/nostr+json' });
    res.end(JSON.stringify({ pubkey: honestId, software: 'https://github.com/chaos-relay-network' }));
  });
  const wss = new WebSocketServer({ server: http });
  let relayedProofs = 0;
  wss.on('connection', (ws) => {
    ws.send(JSON.stringify(['AUTH', 'fake-challenge']));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as unknown[];
      if (frame[0] !== 'PEER-PROVE') return;
      const upstream = new WebSocket(relay.url);
      upstream.on('open', () => upstream.send(JSON.stringify(['PEER-PROVE', frame[1], relay.url])));
      upstream.on('message', (d) => {
        const f = JSON.parse(d.toString()) as unknown[];
        if (f[0] === 'PEER-PROOF') {
          relayedProofs++;
          ws.send(JSON.stringify(f));
          upstream.close();
        }
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const fakeUrl = `ws://127.0.0.1:${(http.address() as { port: number }).port}`;
  const dialler = await startRelay({ args: ['--peers', fakeUrl, '--reconnect-min-ms', '200', '--reconnect-max-ms', '500'] });
  try {
    await waitFor('a relayed proof', () => relayedProofs > 0, 30_000);
    const refused = await dialler.waitForLog(/^peer identity proof refused$/, 15_000);
    t.match(String(refused.reason), /another relay URL/, 'the relayed proof names the honest relay, not the URL dialled');
    const peers = (await dialler.admin<{ peers: Array<{ nodeId: string | null; state: string }> }>('/admin/peers')).body.peers;
    t.equal(peers[0]?.nodeId, null, 'no node id is attributed to the fake relay');
    t.not(peers[0]?.state, 'up', 'the link does not come up');
    t.match((await dialler.admin<string>('/metrics')).body, /relay_peer_identity_proofs_total\{outcome="refused"\} [1-9]/, 'the refused proof is counted');
  } finally {
    await dialler.stop();
    await dialler.cleanup();
    wss.close();
    http.close();
  }
});

/** Signs a second AUTH for the challenge this connection was given. */
async function reauthenticate(link: NostrLink, key: Uint8Array): Promise<{ ok: boolean; message: string }> {
  if (!link.challenge) throw new Error('no challenge recorded');
  return link.answerChallenge(key, relay.url, link.challenge);
}

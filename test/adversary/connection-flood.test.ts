// One address opening connection after connection must not take the relay's memory or the other clients' places.
// Past limits.max_connections_per_ip the upgrade is answered HTTP 429 before any connection state exists; past
// limits.max_connections, 503. Other addresses keep connecting; a connection proven to be a peer of our network
// leaves its address's budget (peers have their own); closed connections give their places back.
import t from 'tap';
import WebSocket from 'ws';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { craft, NostrLink } from '../helpers/malicious-node.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { waitFor } from '../helpers/cluster.js';

const PER_IP = 10;
const TOTAL = 25;
const peerKey = generateSecretKey();

let relay: RelayProcess;
const opened: WebSocket[] = [];
t.before(async () => {
  relay = await startRelay({ args: ['--peer-node-ids', getPublicKey(peerKey), '--max-connections-per-ip', String(PER_IP), '--max-connections', String(TOTAL)] });
});
t.teardown(async () => {
  for (const ws of opened) ws.terminate();
  await relay?.stop();
  await relay?.cleanup();
});

/** Opens a WebSocket from `localAddress`: 'open', or the HTTP status and body of a refused upgrade. */
function dial(localAddress: string): Promise<{ ws: WebSocket; status: 'open' } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(relay.url, { localAddress, perMessageDeflate: false });
    ws.once('open', () => {
      opened.push(ws);
      resolve({ ws, status: 'open' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => reject(err));
  });
}

async function openCount(): Promise<number> {
  const m = (await relay.admin<string>('/metrics')).body.match(/^relay_connections(?:\{[^}]*\})? (\d+)/m);
  return Number(m?.[1] ?? NaN);
}

const refusals = async (reason: string) => Number((await relay.admin<string>('/metrics')).body.match(new RegExp(`relay_client_refusals_total\\{reason="${reason}"\\} (\\d+)`))?.[1] ?? 0);

t.test(`one address gets ${PER_IP} connections, then HTTP 429; other addresses are unaffected`, async (t) => {
  for (let i = 0; i < PER_IP; i++) t.equal((await dial('127.0.0.6')).status, 'open', `connection ${i + 1} from 127.0.0.6`);
  const refused = await dial('127.0.0.6');
  t.equal(refused.status, 429, 'the next one is refused with 429');
  t.match('body' in refused ? refused.body : '', new RegExp(`too many connections from your address \\(the limit is ${PER_IP}\\)`));
  t.equal(await refusals('connections-ip'), 1, 'counted');
  const honest = await NostrLink.connect(relay.url, { localAddress: '127.0.0.7' });
  const ok = await honest.publish(craft.valid(generateSecretKey()));
  t.equal(ok.ok, true, `an honest client on another address connects and publishes (${ok.message})`);
  await honest.close();
});

t.test('a proven peer does not use its address budget; a closed connection gives its place back', async (t) => {
  // 127.0.0.6 is full. Free one place, let a peer take it, prove itself, and the place is free again.
  opened.shift()!.close();
  await waitFor('the closed place is free', async () => (await openCount()) === PER_IP - 1, 10_000);
  const peer = await NostrLink.connect(relay.url, { localAddress: '127.0.0.6' });
  const auth = await peer.authenticate(peerKey, relay.url, 5000);
  t.equal(auth?.ok, true, 'the allow-listed node id authenticates as a peer');
  t.equal((await dial('127.0.0.6')).status, 'open', "the peer left 127.0.0.6's budget: another client fits");
  t.equal((await dial('127.0.0.6')).status, 429, 'and then the address is full again');
  await peer.close();
});

t.test(`the relay holds at most ${TOTAL} connections: then HTTP 503 for everyone`, async (t) => {
  // The peer's close above may still be on its way: count from the connections this file holds open, once the
  // relay agrees (read at once, the peer was sometimes still counted and the last place went unfilled).
  await waitFor('only the connections this test holds are open', async () => (await openCount()) === opened.length, 10_000);
  const before = opened.length;
  let accepted = 0;
  for (const address of ['127.0.0.8', '127.0.0.9']) {
    for (let i = 0; i < PER_IP && before + accepted < TOTAL; i++) {
      const r = await dial(address);
      t.equal(r.status, 'open');
      accepted++;
    }
  }
  t.equal(await openCount(), TOTAL, `${TOTAL} connections open`);
  const refused = await dial('127.0.0.10');
  t.equal(refused.status, 503, 'a new address is refused with 503 once the relay is full');
  t.ok((await refusals('connections-total')) >= 1, 'counted');
  for (const ws of opened.splice(0)) ws.close();
  await waitFor('every connection closed', async () => (await openCount()) === 0, 10_000);
  t.equal((await dial('127.0.0.10')).status, 'open', 'closed connections gave their places back');
  t.equal((await dial('127.0.0.6')).status, 'open', 'the address that was full connects again');
  t.ok(relay.child.exitCode === null, 'the relay is still running');
});

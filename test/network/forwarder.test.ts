// Live forwarding rules in process: every link but the source, once per id, hop limit, NIP-70, PEER-HOPS.
import t from 'tap';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Forwarder } from '../../relay/src/peers/forwarder.js';
import { PeeringMetrics } from '../../relay/src/peers/metrics.js';
import type { PeerLink } from '../../relay/src/peers/peer-link.js';
import type { ClientConnection } from '../../relay/src/server/connection.js';
import { signed } from '../helpers/ws-client.js';

interface Sent {
  link: string;
  id: string;
  hops: number;
}

function setup(maxHops = 3) {
  const sent: Sent[] = [];
  const link = (url: string, nodeId: string) =>
    ({ url, remoteNodeId: nodeId, state: 'up', isUp: true, forward: (_raw: string, id: string, hops: number) => sent.push({ link: url, id, hops }) }) as unknown as PeerLink;
  const links = [link('ws://x', 'x'.repeat(64).replace(/x/g, 'a')), link('ws://y', 'b'.repeat(64))];
  const metrics = new PeeringMetrics(new Registry(), { links: () => [], partitioned: () => false, unreachable: () => 0 });
  const forwarder = new Forwarder(() => links, maxHops, metrics, pino({ level: 'silent' }));
  return { sent, forwarder };
}

const item = (e: ReturnType<typeof signed>) => ({ event: e, raw: JSON.stringify(e) });
const client = { kind: 'client' as const, address: '127.0.0.1:1', connectionId: 1 };
const peerA = { kind: 'peer' as const, nodeId: 'a'.repeat(64), url: 'ws://a' };

t.test('a client event goes to every link with hop 1, once', async (t) => {
  const { sent, forwarder } = setup();
  const e = signed();
  forwarder.onAccepted(item(e), client);
  forwarder.onAccepted(item(e), client);
  t.same(sent, [{ link: 'ws://x', id: e.id, hops: 1 }, { link: 'ws://y', id: e.id, hops: 1 }]);
});

t.test('a peer event skips the link it came from and counts the announced hops', async (t) => {
  const { sent, forwarder } = setup();
  const conn = { source: peerA, notice: () => undefined } as unknown as ClientConnection;
  const e = signed();
  await forwarder.peerHopsHandler()(conn, ['PEER-HOPS', e.id, 2]);
  forwarder.onAccepted(item(e), peerA);
  t.same(sent, [{ link: 'ws://y', id: e.id, hops: 3 }]);
});

t.test('hop limit and NIP-70 stop forwarding', async (t) => {
  const { sent, forwarder } = setup(3);
  const conn = { source: peerA, notice: () => undefined } as unknown as ClientConnection;
  const far = signed();
  await forwarder.peerHopsHandler()(conn, ['PEER-HOPS', far.id, 3]);
  forwarder.onAccepted(item(far), peerA);
  forwarder.onAccepted(item(signed({ tags: [['-']] })), client);
  t.same(sent, [], 'nothing forwarded');
});

t.test('PEER-HOPS from a connection that did not authenticate as a peer is refused', async (t) => {
  const { sent, forwarder } = setup();
  const notices: string[] = [];
  const conn = { source: client, notice: (m: string) => notices.push(m) } as unknown as ClientConnection;
  const e = signed();
  await forwarder.peerHopsHandler()(conn, ['PEER-HOPS', e.id, 3]);
  forwarder.onAccepted(item(e), peerA);
  t.match(notices[0], /^auth-required:/);
  t.same(sent.map((s) => s.hops), [2], 'the unannounced event counts as one hop');
});

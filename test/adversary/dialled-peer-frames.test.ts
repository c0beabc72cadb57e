// A relay we dial (a configured peer URL: compromised, or anyone answering there) sends 64 MB frames the moment the
// WebSocket opens, before any identity proof. Our side of an outbound link must refuse frames far larger than any
// legitimate one (events fit max_message_length, NEG-MSG frames the responder's frame limit) instead of buffering,
// decoding and parsing 64 MB each: the link is closed with 1009, the relay's RSS stays bounded, it keeps serving.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { generateSecretKey } from 'nostr-tools/pure';
import { craft, NostrLink } from '../helpers/malicious-node.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { waitFor } from '../helpers/cluster.js';

const FRAME_BYTES = 64 * 1024 * 1024;
/** Growth allowed over the relay's RSS before the attack: a 64 MB frame accepted costs 2-3x its size at once. */
const RSS_GROWTH_BOUND_MB = 100;

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

const big = Buffer.from(`["NOTICE","${'x'.repeat(FRAME_BYTES - 14)}"]`);
const closes: number[] = [];
let framesSent = 0;
const http = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/nostr+json' });
  res.end(JSON.stringify({ name: 'hostile', software: 'https://example.invalid/hostile' }));
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on('connection', (ws: WebSocket) => {
  ws.on('close', (code) => closes.push(code));
  ws.on('error', () => undefined);
  // Up to 3 frames per connection, each once the previous one has left our buffer.
  const next = (left: number) => {
    if (left === 0 || ws.readyState !== ws.OPEN) return;
    ws.send(big, { binary: false }, () => {
      framesSent++;
      next(left - 1);
    });
  };
  next(3);
});

let relay: RelayProcess;
t.before(async () => {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const url = `ws://127.0.0.1:${(http.address() as { port: number }).port}`;
  relay = await startRelay({ args: ['--peers', url, '--reconnect-min-ms', '500', '--reconnect-max-ms', '1000'] });
});
t.teardown(async () => {
  await relay?.stop();
  await relay?.cleanup();
  for (const c of wss.clients) c.terminate();
  wss.close();
  http.close();
});

t.test('64 MB frames from a dialled peer: link closed with 1009, RSS bounded, the relay keeps serving', async (t) => {
  const before = rssMb(relay.child.pid!);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(relay.child.pid!))), 50);
  try {
    // Three dials (or six frames taken in, on a relay that accepts them).
    await waitFor('three closed links or six 64 MB frames', () => closes.length >= 3 || framesSent >= 6, 90_000, 100);
  } finally {
    clearInterval(sampler);
  }
  t.ok(closes.length >= 1 && closes.every((c) => c === 1009), `our side closes each link with 1009 (message too big): ${JSON.stringify(closes)}, ${framesSent} frames sent`);
  t.ok(peak - before < RSS_GROWTH_BOUND_MB, `RSS ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB (+${(peak - before).toFixed(0)} MB; bound +${RSS_GROWTH_BOUND_MB} MB)`);
  t.equal(relay.child.exitCode, null, 'the relay is still running');
  const client = await NostrLink.connect(relay.url, { authenticate: false });
  const ok = await client.publish(craft.valid(generateSecretKey()));
  t.equal(ok.ok, true, `and accepts an honest event (${ok.message})`);
  await client.close();
});

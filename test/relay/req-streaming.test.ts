// A REQ's stored events are read from PostgreSQL page by page as the client takes them: a client that stops reading
// holds the relay to one page (the query stays open on the server), never to the whole answer in memory.
import t from 'tap';
import pg from 'pg';
import WebSocket from 'ws';
import { signed } from '../helpers/ws-client.js';
import { RawClient } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';

const EVENTS = 1500;
const CONTENT = 'x'.repeat(20_000);

let relay: RelayProcess;
let db: pg.Pool;
t.before(async () => {
  relay = await startRelay({ args: ['--max-message-length', '70000', '--max-content-length', '30000'] });
  db = new pg.Pool({ connectionString: relay.databaseUrl, max: 1 });
});
t.teardown(async () => {
  await db.end();
  await relay.stop();
  await relay.cleanup();
});

const tag = `stream-${Date.now()}`;
const base = Math.floor(Date.now() / 1000) - EVENTS;

/** The relay's read connections that are inside a statement (not idle), running our tag's query. */
async function openReads(): Promise<number> {
  const r = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'nostr-relay-reader' AND state <> 'idle' AND query LIKE '%event_tags%'`,
  );
  return r.rows[0]!.n;
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('publish the events', async (t) => {
  const c = await RawClient.connect(relay.url);
  const events = Array.from({ length: EVENTS }, (_, i) => signed({ content: CONTENT, created_at: base + i, tags: [['t', tag]] }));
  const oks = await Promise.all(events.map((e) => c.publish(e, 60_000)));
  t.equal(oks.filter((o) => o.ok).length, EVENTS, 'every event stored');
  await c.close();
});

/** A raw client that can stop reading its socket while the relay keeps writing. */
function connectRaw(): Promise<WebSocket> {
  const ws = new WebSocket(relay.url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    // These sockets are abused on purpose (paused, then terminated with data unread): a reset is expected, not a failure.
    ws.on('error', () => undefined);
  });
}

const pause = (ws: WebSocket) => (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
const resume = (ws: WebSocket) => (ws as unknown as { _socket: import('node:net').Socket })._socket.resume();

t.test('a client that stops reading holds the query open; when it reads again it gets every event, newest first', async (t) => {
  const ws = await connectRaw();
  const got: Array<{ id: string; created_at: number }> = [];
  let eose = false;
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as unknown[];
    if (f[0] === 'EVENT' && f[1] === 's') got.push(f[2] as { id: string; created_at: number });
    if (f[0] === 'EOSE' && f[1] === 's') eose = true;
  });
  pause(ws);
  ws.send(JSON.stringify(['REQ', 's', { '#t': [tag], limit: 5000 }]));
  // 30 MB cannot fit the socket buffers: a relay that streams is still inside the query; one that read everything
  // at once finished it in milliseconds.
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(await openReads(), 1, 'the read connection is still inside the statement while the client does not read');
  resume(ws);
  await until('EOSE', async () => eose, 60_000);
  t.equal(got.length, EVENTS, 'every event, once');
  t.equal(new Set(got.map((e) => e.id)).size, EVENTS, 'no event twice');
  t.ok(got.every((e, i) => i === 0 || got[i - 1]!.created_at >= e.created_at), 'newest first');
  await until('read connection released', async () => (await openReads()) === 0);
  ws.close();
});

t.test('CLOSE while the client is not reading ends the query and releases the connection', async (t) => {
  const ws = await connectRaw();
  pause(ws);
  ws.send(JSON.stringify(['REQ', 'c', { '#t': [tag], limit: 5000 }]));
  await until('query open', async () => (await openReads()) === 1);
  ws.send(JSON.stringify(['CLOSE', 'c']));
  await until('read connection released after CLOSE', async () => (await openReads()) === 0);
  t.pass('released');
  ws.terminate();
  // The relay is still up (a CLOSE landing while the next page was being asked for once ended the process with an
  // unhandled rejection) and serves the next REQ normally.
  await new Promise((r) => setTimeout(r, 200));
  t.equal(relay.child.exitCode, null, 'the relay process is still running');
  const c = await RawClient.connect(relay.url);
  const r = await c.query('after', { '#t': [tag], limit: 3 });
  t.equal(r.events.length, 3);
  await c.close();
});

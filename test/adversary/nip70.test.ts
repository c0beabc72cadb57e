// NIP-70: an event with a ["-"] tag may only be published by its author, proved by NIP-42 AUTH on the same
// connection. Unauthenticated: OK false "auth-required:" and an AUTH challenge; authenticated as another key:
// OK false "restricted:" and a fresh challenge; authenticated as the author: accepted and served.
import t from 'tap';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';

let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay();
});
t.teardown(async () => {
  await relay?.stop();
  await relay?.cleanup();
});

const author = generateSecretKey();
const other = generateSecretKey();

/**
 * Connects with the frame listener attached before the socket opens: the relay sends its AUTH challenge with the
 * upgrade, and `RawClient.connect` attaches its listener one tick after `open` (the challenge can be missed).
 */
async function connect(url: string): Promise<RawClient> {
  const ws = new WebSocket(url);
  const client = new (RawClient as unknown as new (ws: WebSocket) => RawClient)(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

async function nextChallenge(c: RawClient): Promise<string> {
  return (await c.next((f) => f[0] === 'AUTH' && typeof f[1] === 'string', 10_000, 'AUTH challenge'))[1] as string;
}

/** Answers a challenge (NIP-42) with `key`; resolves with the OK. */
async function auth(c: RawClient, challenge: string, key: Uint8Array): Promise<{ ok: boolean; message: string }> {
  const event = finalizeEvent({ kind: 22242, created_at: Math.floor(Date.now() / 1000), tags: [['relay', relay.url], ['challenge', challenge]], content: '' }, key);
  c.send(['AUTH', event]);
  const ok = await c.next((f) => f[0] === 'OK' && f[1] === event.id, 10_000, 'OK for AUTH');
  return { ok: ok[2] as boolean, message: ok[3] as string };
}

async function storedCount(id: string): Promise<number> {
  const reader = await RawClient.connect(relay.url);
  const got = await reader.query('check', { ids: [id] });
  await reader.close();
  return got.events.length;
}

t.test('a protected event from an unauthenticated connection is refused with auth-required and a challenge', async (t) => {
  const c = await connect(relay.url);
  const first = await nextChallenge(c); // sent on connect
  const ev = signed({ content: 'protected, no auth', tags: [['-']] }, author);
  const res = await c.publish(ev);
  t.equal(res.ok, false);
  t.match(res.message, /^auth-required: /);
  t.equal(await nextChallenge(c), first, 'the outstanding challenge is sent again with the refusal');
  t.equal(await storedCount(ev.id), 0, 'not stored');
  const plain = await c.publish(signed({ content: 'not protected' }, author));
  t.same(plain, { ok: true, message: '' }, 'unprotected events need no AUTH');
  await c.close();
});

t.test('accepted after AUTH as its author', async (t) => {
  const c = await connect(relay.url);
  const ev = signed({ content: 'protected, authed', tags: [['-']] }, author);
  t.equal((await c.publish(ev)).ok, false, 'refused before AUTH');
  const challenge = await nextChallenge(c);
  t.match(await auth(c, challenge, author), { ok: true }, 'AUTH as the author');
  t.same(await c.publish(ev), { ok: true, message: '' }, 'the same event, now accepted');
  t.equal(await storedCount(ev.id), 1, 'stored and served');
  await c.close();
});

t.test('refused when authenticated as another key; AUTH again as the author fixes it', async (t) => {
  const c = await connect(relay.url);
  t.equal((await auth(c, await nextChallenge(c), other)).ok, true, `AUTH as ${getPublicKey(other).slice(0, 8)}`);
  const ev = signed({ content: 'protected, wrong key', tags: [['-']] }, author);
  const res = await c.publish(ev);
  t.equal(res.ok, false);
  t.match(res.message, /^restricted: .*only its author/);
  t.equal(await storedCount(ev.id), 0, 'not stored');
  const fresh = await nextChallenge(c);
  t.match(await auth(c, fresh, author), { ok: true }, 'the challenge again lets the connection AUTH as the author');
  t.same(await c.publish(ev), { ok: true, message: '' });
  t.equal(await storedCount(ev.id), 1);
  await c.close();
});

t.test('a forged ["-"] event claiming the authenticated key still has its signature checked', async (t) => {
  const c = await connect(relay.url);
  t.equal((await auth(c, await nextChallenge(c), author)).ok, true);
  const ev = signed({ content: 'protected, bad sig', tags: [['-']] }, author);
  const forged = { ...ev, sig: ev.sig.slice(0, -2) + (ev.sig.endsWith('00') ? '11' : '00') };
  const res = await c.publish(forged);
  t.equal(res.ok, false);
  t.match(res.message, /^invalid: /);
  await c.close();
});

t.test('refusals are counted', async (t) => {
  const metrics = await relay.admin<string>('/metrics');
  for (const reason of ['auth-required', 'restricted']) {
    const line = metrics.body.split('\n').find((l) => l.startsWith(`relay_events_rejected_total{reason="${reason}"`));
    t.ok(line && Number(line.split(' ').at(-1)) >= 1, `${reason}: ${line}`);
  }
});

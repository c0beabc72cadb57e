// The runbook's ban endpoints driven by real curl (which sends `application/x-www-form-urlencoded` with a JSON
// body): manual bans (permanent and temporary), unban, token enforcement, escalation of automatic bans, bans
// surviving a restart, and export/import between relays.
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { NostrLink, runAttack } from '../helpers/malicious-node.js';

const run = promisify(execFile);

/** `curl -s -w '\n%{http_code}' ...`: returns the body and the status. */
async function curl(...args: string[]): Promise<{ status: number; body: string; json: any }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', ...args]);
  const cut = stdout.lastIndexOf('\n');
  const body = stdout.slice(0, cut);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(stdout.slice(cut + 1)), body, json };
}

const tmp = mkdtempSync(join(tmpdir(), 'bans-api-'));
const repeatKey = generateSecretKey();
let a: RelayProcess;
let b: RelayProcess;
t.before(async () => {
  [a, b] = await Promise.all([
    // The repeat offender is an allow-listed peer node (a random key would be a client on exempt 127.0.0.1).
    startRelay({ args: ['--ban-base-seconds', '1', '--ban-escalation', '4', '--peer-node-ids', getPublicKey(repeatKey)] }),
    startRelay({ args: ['--admin-token', 's3cret'] }),
  ]);
});
t.teardown(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([a?.cleanup(), b?.cleanup()]);
  rmSync(tmp, { recursive: true, force: true });
});

/** Bans that cannot run out while a test compares lists (the escalation test leaves seconds-long ones behind). */
function lasting<T extends { expiresAt: string | null }>(bans: T[]): T[] {
  return bans.filter((x) => x.expiresAt === null || Date.parse(x.expiresAt) > Date.now() + 60_000);
}

const peerKey = generateSecretKey();
const peerId = getPublicKey(peerKey);

/** Whether a peer with this key can authenticate to the relay now. */
async function canAuthenticate(relay: RelayProcess, key: Uint8Array): Promise<boolean> {
  const link = await NostrLink.connect(relay.url);
  const answer = await link.authenticate(key, relay.url);
  await link.close();
  return answer?.ok === true;
}

t.test('the runbook procedure verbatim: scores, ban with curl -d, /admin/peers without the node', async (t) => {
  t.ok(await canAuthenticate(a, peerKey), 'the peer authenticates before the ban');
  const scores = await curl(`http://localhost:${a.adminPort}/admin/reputation/scores`);
  t.equal(scores.status, 200);
  t.ok(Array.isArray(scores.json.scores));
  const ban = await curl('-X', 'POST', `http://localhost:${a.adminPort}/admin/peers/ban`, '-d', `{"nodeId": "${peerId}"}`);
  t.equal(ban.status, 200, ban.body);
  t.equal(ban.json.ban.nodeId, peerId);
  t.equal(ban.json.ban.expiresAt, null, 'no duration: permanent');
  t.equal(ban.json.persisted, true, 'stored in PostgreSQL');
  const peers = await curl(`http://localhost:${a.adminPort}/admin/peers`);
  t.equal(peers.status, 200);
  t.notOk(peers.body.includes(peerId), 'the node id does not appear in /admin/peers');
  t.notOk(await canAuthenticate(a, peerKey), 'its AUTH is refused');
  t.equal((await a.waitForLog(/^banned peer refused$/)).nodeId, peerId, 'the refusal is logged');
});

t.test('temporary bans expire; bad requests are refused with a reason', async (t) => {
  const other = getPublicKey(generateSecretKey());
  const ban = await curl('-X', 'POST', `http://127.0.0.1:${a.adminPort}/admin/peers/ban`, '-d', `{"nodeId": "${other}", "reason": "testing", "duration": "2s"}`);
  t.equal(ban.status, 200);
  t.ok(Date.parse(ban.json.ban.expiresAt) - Date.parse(ban.json.ban.bannedAt) === 2000, 'expires 2 s after the ban');
  t.equal(ban.json.ban.reason, 'testing');
  await a.waitForLog(/^ban expired$/, 6000);
  const list = await curl(`http://127.0.0.1:${a.adminPort}/admin/bans`);
  t.notOk(list.body.includes(other), 'no longer exported once expired');

  const bad = await curl('-X', 'POST', `http://127.0.0.1:${a.adminPort}/admin/peers/ban`, '-d', '{"nodeId": "not-hex"}');
  t.equal(bad.status, 400);
  t.match(bad.json.error, /64 hex/);
  const badDuration = await curl('-X', 'POST', `http://127.0.0.1:${a.adminPort}/admin/peers/ban`, '-d', `{"nodeId": "${other}", "duration": "soon"}`);
  t.equal(badDuration.status, 400);
  const notBanned = await curl('-X', 'POST', `http://127.0.0.1:${a.adminPort}/admin/peers/unban`, '-d', `{"nodeId": "${other}"}`);
  t.equal(notBanned.status, 404);
});

t.test('automatic bans escalate on repeat', async (t) => {
  const key = repeatKey;
  const first = await runAttack(a.url, key, { forged: 6 });
  t.equal(first.closeCode, 1008);
  const bans1 = await curl(`http://127.0.0.1:${a.adminPort}/admin/bans`);
  const ban1 = bans1.json.bans.find((x: { subject: string }) => x.subject === first.nodeId);
  t.equal(ban1.strikes, 1);
  t.equal(Date.parse(ban1.expiresAt) - Date.parse(ban1.bannedAt), 1000, 'first automatic ban: ban_base_seconds');
  await new Promise((r) => setTimeout(r, 1500));
  const second = await runAttack(a.url, key, { forged: 6 });
  t.equal(second.closeCode, 1008, 'banned again after the first ban ran out');
  const bans2 = await curl(`http://127.0.0.1:${a.adminPort}/admin/bans`);
  const ban2 = bans2.json.bans.find((x: { subject: string }) => x.subject === first.nodeId);
  t.equal(ban2.strikes, 2);
  t.equal(Date.parse(ban2.expiresAt) - Date.parse(ban2.bannedAt), 4000, 'second: ban_escalation times longer');
});

t.test('mutating calls need the token when one is configured', async (t) => {
  const url = `http://127.0.0.1:${b.adminPort}/admin/peers/ban`;
  const denied = await curl('-X', 'POST', url, '-d', `{"nodeId": "${peerId}"}`);
  t.equal(denied.status, 401);
  const wrong = await curl('-X', 'POST', url, '-H', 'Authorization: Bearer nope', '-d', `{"nodeId": "${peerId}"}`);
  t.equal(wrong.status, 401);
  const unauthenticatedRead = await curl(`http://127.0.0.1:${b.adminPort}/admin/bans`);
  t.equal(unauthenticatedRead.status, 401, 'with a token configured, reads need it too');
  const read = await curl(`http://127.0.0.1:${b.adminPort}/admin/bans`, '-H', 'Authorization: Bearer s3cret');
  t.equal(read.status, 200, 'reads with the token');
  t.same(read.json.bans, []);
});

t.test('export from A, import into B: the same bans, expiry kept; importing twice changes nothing', async (t) => {
  const temp = getPublicKey(generateSecretKey());
  await curl('-X', 'POST', `http://127.0.0.1:${a.adminPort}/admin/peers/ban`, '-d', `{"nodeId": "${temp}", "duration": "1h", "reason": "shared"}`);
  await curl('-X', 'POST', `http://127.0.0.1:${a.adminPort}/admin/peers/ban`, '-d', '{"address": "10.9.8.7"}');
  const exported = await curl(`http://127.0.0.1:${a.adminPort}/admin/bans`);
  const file = join(tmp, 'bans.json');
  writeFileSync(file, exported.body);
  const imported = await curl('-X', 'POST', `http://127.0.0.1:${b.adminPort}/admin/bans/import`, '-H', 'Authorization: Bearer s3cret', '-d', `@${file}`);
  t.equal(imported.status, 200, imported.body);
  t.equal(imported.json.imported, exported.json.bans.length, `${imported.json.imported} bans imported`);
  const onB = await curl(`http://127.0.0.1:${b.adminPort}/admin/bans`, '-H', 'Authorization: Bearer s3cret');
  const view = (bans: Array<{ subject: string; expiresAt: string | null }>) =>
    bans.map((x) => ({ subject: x.subject, expiresAt: x.expiresAt === null ? null : Math.round(Date.parse(x.expiresAt) / 1000) })).sort((p, q) => p.subject.localeCompare(q.subject));
  t.same(view(lasting(onB.json.bans)), view(lasting(exported.json.bans)), 'round trip: same subjects and expiry');
  t.equal(lasting(exported.json.bans).length, 3, 'the permanent peer ban, the 1 h ban and the address ban');
  t.ok(onB.json.bans.every((x: { origin: string }) => x.origin === 'import'));
  t.ok(onB.json.bans.some((x: { subject: string; reason: string }) => x.subject === temp && x.reason === 'shared'), 'reasons carried');
  const again = await curl('-X', 'POST', `http://127.0.0.1:${b.adminPort}/admin/bans/import`, '-H', 'Authorization: Bearer s3cret', '-d', `@${file}`);
  t.equal(again.json.imported, 0, 'importing the same list twice is a no-op');
  t.notOk(await canAuthenticate(b, peerKey), 'the imported ban is enforced on B');
  const refused = await NostrLink.connect(b.url, { localAddress: '127.0.0.1' }).then(() => 'open');
  t.equal(refused, 'open', 'an unrelated address is still admitted');
});

t.test('bans survive a restart; unban through the API lets the node back in', async (t) => {
  const before = await curl(`http://127.0.0.1:${a.adminPort}/admin/bans`);
  await a.stop();
  const restarted = await startRelay({ databaseUrl: a.databaseUrl, redisUrl: a.redisUrl, redisKeyPrefix: a.redisKeyPrefix, dataDir: a.dataDir });
  t.teardown(() => restarted.stop());
  const after = await curl(`http://127.0.0.1:${restarted.adminPort}/admin/bans`);
  t.same(lasting(after.json.bans), lasting(before.json.bans), 'the same bans after the restart');
  t.equal(lasting(after.json.bans).length, 3);
  t.notOk(await canAuthenticate(restarted, peerKey), 'still enforced');
  const unban = await curl('-X', 'POST', `http://127.0.0.1:${restarted.adminPort}/admin/peers/unban`, '-d', `{"nodeId": "${peerId}"}`);
  t.equal(unban.status, 200);
  t.equal(unban.json.persisted, true);
  t.ok(await canAuthenticate(restarted, peerKey), 'the node authenticates again');
  await restarted.stop();
  const again = await startRelay({ databaseUrl: a.databaseUrl, redisUrl: a.redisUrl, redisKeyPrefix: a.redisKeyPrefix, dataDir: a.dataDir });
  const list = await curl(`http://127.0.0.1:${again.adminPort}/admin/bans`);
  t.notOk(list.body.includes(peerId), 'the unban survives a restart too');
  await again.stop();
});

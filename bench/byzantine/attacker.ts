// One attack, run as its own (niced) process by bench/byzantine/attacks.ts or live.ts:
//
//   npx tsx bench/byzantine/attacker.ts '{"attack":"req-flood","url":"ws://127.0.0.1:7777","seconds":6,"localAddress":"127.0.0.9"}'
//
// Client attacks come from an anonymous connection (auth-client answers AUTH with a random key first); peer
// attacks (peer-*) answer AUTH with `secretKey`, a node id on the target's allow-list. Prints one JSON line: frames
// sent, answers by kind, the AUTH outcome, when (ms after the start) the relay first refused and closed the
// connection (how soon the attacker was isolated), and whether a reconnect from the same address was refused.
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { craft, fastSign } from '../../test/helpers/malicious-node.js';

import type { AttackerReport, Plan } from './plan.js';

const GOSSIP_KIND = 20780;
const plan = JSON.parse(process.argv[2] ?? '{}') as Plan;
const peerKey = plan.secretKey ? Uint8Array.from(Buffer.from(plan.secretKey, 'hex')) : undefined;
const isPeerAttack = plan.attack.startsWith('peer-');
if (isPeerAttack && !peerKey) throw new Error(`${plan.attack} needs secretKey`);

/** Built before the clock starts, so the attacker's rate is not its own signing speed. */
const pool: string[] = [];
const now = () => Math.floor(Date.now() / 1000);
function forgedPool(n: number): void {
  // One signed event, its content changed and its id recomputed: every copy fails only the signature check.
  const base = craft.valid(generateSecretKey());
  for (let i = 0; i < n; i++) {
    const content = `forged ${i} ${base.content}`;
    const id = createHash('sha256').update(JSON.stringify([0, base.pubkey, base.created_at, base.kind, base.tags, content])).digest('hex');
    pool.push(JSON.stringify(['EVENT', { ...base, content, id }]));
  }
}
switch (plan.attack) {
  case 'event-flood':
  case 'auth-client-flood': {
    const key = generateSecretKey();
    for (let i = 0; i < 3000; i++) pool.push(JSON.stringify(['EVENT', craft.valid(key)]));
    break;
  }
  case 'peer-flood':
    // A compromised peer relays many authors' events: valid ones, far past its peer budget.
    for (let i = 0; i < 6000; i++) pool.push(JSON.stringify(['EVENT', craft.valid(generateSecretKey())]));
    break;
  case 'forged-flood':
  case 'peer-forged':
    forgedPool(20_000);
    break;
  case 'gossip-flood':
  case 'peer-gossip':
    // The partition-on-demand payload: ephemeral gossip, random keys, content "x" (validly signed).
    for (let i = 0; i < 2000; i++) {
      const ev = fastSign({ kind: GOSSIP_KIND, created_at: now(), tags: [], content: 'x' }, generateSecretKey());
      pool.push(plan.attack === 'peer-gossip' ? JSON.stringify(['PEER-HOPS', ev.id, 1]) + '\n' + JSON.stringify(['EVENT', ev]) : JSON.stringify(['EVENT', ev]));
    }
    break;
  case 'peer-big-frame':
    // 64 MB: the frame size the issue says a peer could send.
    pool.push(`["EVENT",{"content":"${'x'.repeat(64 * 1024 * 1024)}"}]`);
    break;
  default:
}

const answers: Record<string, number> = {};
let sent = 0;
let firstRefusalMs: number | null = null;
let closedMs: number | null = null;
let closeCode: number | null = null;
let authOutcome: string | null = null;
const started = performance.now();
const since = () => Math.round(performance.now() - started);
const count = (kind: string) => (answers[kind] = (answers[kind] ?? 0) + 1);

/**
 * Opens a WebSocket; resolves with it (and, given a key, the outcome of answering the relay's NIP-42 challenge,
 * listened for from the moment it opens: the challenge comes in the same packet as the upgrade), or the HTTP status
 * of a refused upgrade (0: no answer).
 */
function dial(key?: Uint8Array): Promise<{ ws: WebSocket; auth: Promise<string> } | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(plan.url, { perMessageDeflate: false, localAddress: plan.localAddress, handshakeTimeout: 10_000 });
    ws.once('open', () => resolve({ ws, auth: key ? authenticate(ws, key) : Promise.resolve('not tried') }));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => resolve(0));
  });
}

/** Answers the relay's NIP-42 challenge with `key`; the OK's message (or "refused: ..."). */
function authenticate(ws: WebSocket, key: Uint8Array): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no challenge'), 5000);
    let authId = '';
    const onMessage = (data: WebSocket.RawData) => {
      const f = JSON.parse(String(data)) as unknown[];
      if (f[0] === 'AUTH' && typeof f[1] === 'string' && !authId) {
        const ev = finalizeEvent({ kind: 22242, created_at: now(), tags: [['relay', plan.url], ['challenge', f[1]]], content: '' }, key);
        authId = ev.id;
        ws.send(JSON.stringify(['AUTH', ev]));
      } else if (f[0] === 'OK' && f[1] === authId) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(f[2] === true ? `ok${f[3] ? ': ' + String(f[3]).slice(0, 60) : ' (peer)'}` : `refused: ${String(f[3]).slice(0, 60)}`);
      }
    };
    ws.on('message', onMessage);
    ws.once('close', () => resolve('closed'));
  });
}

async function reconnect(): Promise<string> {
  const key = peerKey ?? (plan.attack === 'auth-client-flood' ? generateSecretKey() : undefined);
  const again = await dial(key);
  if (typeof again === 'number') return again ? `refused (HTTP ${again})` : 'refused (connection error)';
  const outcome = key ? await again.auth : 'open';
  again.ws.terminate();
  return outcome.startsWith('ok') || outcome === 'open' || outcome === 'no challenge' ? `accepted (${outcome})` : outcome;
}

async function connFlood(): Promise<AttackerReport> {
  const sockets: WebSocket[] = [];
  const refusedUpgrades: Record<string, number> = {};
  const deadline = started + plan.seconds * 1000;
  for (let i = 0; i < (plan.connections ?? 600) && performance.now() < deadline; i++) {
    // In batches of 20 at a time, holding every socket that opens.
    const batch = await Promise.all(Array.from({ length: 20 }, () => dial()));
    for (const r of batch) {
      sent++;
      if (typeof r === 'number') {
        refusedUpgrades[String(r)] = (refusedUpgrades[String(r)] ?? 0) + 1;
        firstRefusalMs ??= since();
      } else sockets.push(r.ws);
    }
    i += 19;
  }
  const opened = sockets.length;
  while (performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const stillOpen = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
  for (const s of sockets) s.terminate();
  return { type: 'report', attack: plan.attack, sent, answers: { 'held to the end': stillOpen }, auth: null, firstRefusalMs, closedMs, closeCode, reconnect: 'not tried', opened, refusedUpgrades };
}

function frame(i: number): string {
  switch (plan.attack) {
    case 'req-flood':
      return JSON.stringify(['REQ', `r${i}`, { kinds: [1], limit: 50 }]);
    case 'close-flood':
      return `["CLOSE","${i}${bigId}"]`;
    case 'neg-open-flood':
      return JSON.stringify(['NEG-OPEN', `n${i}`, {}, '61']);
    default:
      return pool[i % pool.length]!;
  }
}
const bigId = 'x'.repeat(100 * 1024);

async function frameFlood(): Promise<AttackerReport> {
  const key = peerKey ?? (plan.attack === 'auth-client-flood' ? generateSecretKey() : undefined);
  const dialled = await dial(key);
  if (typeof dialled === 'number') throw new Error(`upgrade refused (${dialled}) before the attack`);
  const ws = dialled.ws;
  if (key) authOutcome = await dialled.auth;
  ws.on('message', (data) => {
    let f: unknown[];
    try {
      f = JSON.parse(String(data)) as unknown[];
    } catch {
      return count('unparsable');
    }
    const kind = String(f[0]);
    const refused = (kind === 'OK' && f[2] === false) || kind === 'CLOSED' || kind === 'NOTICE' || kind === 'NEG-ERR';
    const reason = refused ? String(f[kind === 'OK' ? 3 : kind === 'NOTICE' ? 1 : 2]).split(':', 1)[0] : '';
    count(refused ? `${kind} ${reason}` : kind);
    if (refused && firstRefusalMs === null) firstRefusalMs = since();
  });
  let ending = false;
  ws.on('close', (code) => {
    if (ending) return; // our own terminate at the end
    closedMs ??= since();
    closeCode = code;
  });
  ws.on('error', () => undefined);
  // As fast as the socket drains: at most 4 MB buffered here (one frame for 64 MB ones), yielding between bursts.
  const limit = plan.attack === 'peer-big-frame' ? 1 : 4 * 1024 * 1024;
  const deadline = started + plan.seconds * 1000;
  while (performance.now() < deadline && ws.readyState === WebSocket.OPEN) {
    for (let i = 0; i < 50 && ws.bufferedAmount < limit && ws.readyState === WebSocket.OPEN; i++) for (const part of frame(sent++).split('\n')) ws.send(part);
    await new Promise((r) => setTimeout(r, ws.bufferedAmount < limit ? 0 : 5));
  }
  if (ws.readyState === WebSocket.OPEN) {
    ending = true;
    ws.terminate();
  } else {
    // The relay is closing us: wait for the close to be recorded.
    await new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(undefined) : ws.once('close', r)));
  }
  const again = closedMs !== null ? await reconnect() : 'not tried';
  return { type: 'report', attack: plan.attack, sent, answers, auth: authOutcome, firstRefusalMs, closedMs, closeCode, reconnect: again };
}

const report = plan.attack === 'conn-flood' ? await connFlood() : await frameFlood();
console.log(JSON.stringify(report));
process.exit(0);

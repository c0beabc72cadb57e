// One client-side attack, run as its own (niced) process by bench/byzantine/attacks.ts:
//
//   npx tsx bench/byzantine/attacker.ts '{"attack":"req-flood","url":"ws://127.0.0.1:7777","seconds":6,"localAddress":"127.0.0.9"}'
//
// Prints one JSON line: frames sent, answers by kind, and when (ms after the start) the relay closed the
// connection or first refused it, which is how soon the attacker was isolated.
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { generateSecretKey } from 'nostr-tools/pure';
import { craft } from '../../test/helpers/malicious-node.js';

export type Attack = 'req-flood' | 'close-flood' | 'neg-open-flood' | 'event-flood' | 'forged-flood';

interface Plan {
  attack: Attack;
  url: string;
  seconds: number;
  localAddress?: string;
}

const plan = JSON.parse(process.argv[2] ?? '{}') as Plan;
const key = generateSecretKey();
/** Built before the clock starts, so the attacker's rate is not its own signing speed. */
const pool: string[] = [];
if (plan.attack === 'event-flood') for (let i = 0; i < 3000; i++) pool.push(JSON.stringify(['EVENT', craft.valid(key)]));
if (plan.attack === 'forged-flood') {
  // One signed event, its content changed and its id recomputed: every copy fails only the signature check.
  const base = craft.valid(key);
  for (let i = 0; i < 20_000; i++) {
    const content = `forged ${i} ${base.content}`;
    const id = createHash('sha256').update(JSON.stringify([0, base.pubkey, base.created_at, base.kind, base.tags, content])).digest('hex');
    pool.push(JSON.stringify(['EVENT', { ...base, content, id }]));
  }
}
const answers: Record<string, number> = {};
let sent = 0;
let firstRefusalMs: number | null = null;
let closedMs: number | null = null;
let closeCode: number | null = null;
const started = performance.now();
const since = () => Math.round(performance.now() - started);
const count = (kind: string) => (answers[kind] = (answers[kind] ?? 0) + 1);

const ws = new WebSocket(plan.url, { perMessageDeflate: false, localAddress: plan.localAddress });
await new Promise<void>((resolve, reject) => {
  ws.once('open', () => resolve());
  ws.once('error', reject);
});
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

const bigId = 'x'.repeat(100 * 1024);

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

// As fast as the socket drains: at most 4 MB buffered here, yielding between bursts.
const deadline = started + plan.seconds * 1000;
while (performance.now() < deadline && ws.readyState === WebSocket.OPEN) {
  for (let i = 0; i < 50 && ws.bufferedAmount < 4 * 1024 * 1024; i++) ws.send(frame(sent++));
  await new Promise((r) => setTimeout(r, ws.bufferedAmount < 4 * 1024 * 1024 ? 0 : 5));
}
if (ws.readyState === WebSocket.OPEN) {
  ending = true;
  ws.terminate();
} else {
  // The relay is closing us: wait for the close to be recorded.
  await new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(undefined) : ws.once('close', r)));
}
console.log(JSON.stringify({ type: 'report', attack: plan.attack, sent, answers, firstRefusalMs, closedMs, closeCode }));
process.exit(0);

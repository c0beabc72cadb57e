// The issue-11 attacks, from outside, against an already running local cluster (`make up`; loopback only):
//
//   npx tsx bench/byzantine/live.ts [--dir .cluster] [--seconds 5] [--only req-flood,partition-8,admin,...]
//
// Floods (attacker.ts, niced, each from its own loopback address 127.0.0.20+) hit relay-a while honest clients
// publish and read on it; after each: honest p99 without/during, bans on every relay (honest ones must be none),
// every relay's mode, A's peer links, RSS growth and supervisor restarts of the relays. Then one-shot probes of the
// other bullets: the 8-event partition on demand, AUTH with a random key and a `peer` tag (role, discovery, second
// AUTH), NIP-70, the admin API from a web page (foreign Origin / Host, text/plain body). It changes nothing but bans
// of its own addresses (which expire: the cluster's bans last 10-20 s) and the events it publishes.
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { assertLoopback, intOption, parseArgs } from '../lib/args.js';
import { REPO_ROOT } from '../lib/relay-child.js';
import { summarize } from '../lib/stats.js';
import { fmt, printTable } from '../lib/table.js';
import { craft, fastSign, NostrLink } from '../../test/helpers/malicious-node.js';
import { CLIENT_ATTACKS, type AttackerReport, type Plan } from './plan.js';
import { honest, reader } from './honest.js';
import { rssMb } from './pair.js';

const PROBES = ['partition-8', 'auth-random-key', 'nip70', 'admin'] as const;
const { values } = parseArgs({ options: { dir: { type: 'string' }, seconds: { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean' } } });
if (values.help) {
  console.log(`usage: npx tsx bench/byzantine/live.ts [--dir .cluster] [--seconds 5] [--only NAME,...]\nattacks: ${CLIENT_ATTACKS.join(', ')}; probes: ${PROBES.join(', ')}`);
  process.exit(0);
}
const seconds = intOption(values, 'seconds', 5);
const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = (only ?? []).filter((n) => !(CLIENT_ATTACKS as readonly string[]).includes(n) && !(PROBES as readonly string[]).includes(n));
if (unknown.length) {
  console.error(`--only: unknown ${unknown.join(', ')}`);
  process.exit(2);
}
const dir = resolve(values.dir ?? join(REPO_ROOT, '.cluster'));

interface Node {
  name: string;
  url: string;
  admin: string;
  nodeId: string;
}
const layout = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { layout: { host: string; nodes: Array<{ name: string; relayPort: number; adminPort: number }> } };
const nodes: Node[] = [];
for (const n of layout.layout.nodes) {
  const url = `ws://${layout.layout.host}:${n.relayPort}`;
  assertLoopback(url);
  const admin = `http://${layout.layout.host}:${n.adminPort}`;
  const status = (await (await fetch(`${admin}/admin/status`)).json()) as { nodeId: string };
  nodes.push({ name: n.name, url, admin, nodeId: status.nodeId });
}
const [a, b] = nodes as [Node, Node];
if (!b) throw new Error('the cluster needs at least two relays');

const get = async <T>(n: Node, path: string) => (await (await fetch(n.admin + path)).json()) as T;
const bans = (n: Node) => get<{ bans: Array<{ subject: string }> }>(n, '/admin/bans').then((r) => r.bans.map((x) => x.subject));
const mode = (n: Node) => get<{ mode: string }>(n, '/admin/status').then((r) => r.mode);
const peersUp = (n: Node) => get<{ peers: Array<{ state: string; url: string }> }>(n, '/admin/peers').then((r) => r.peers);
/** Relay processes as the supervisor runs them: pid and restarts per node name. */
function relayProcs(): Map<string, { pid: number | null; restarts: number }> {
  const list = JSON.parse(readFileSync(join(dir, 'processes.json'), 'utf8')) as Array<{ name: string; pid: number | null; restarts: number }>;
  return new Map(list.filter((p) => p.name.startsWith('relay-')).map((p) => [p.name.slice('relay-'.length), { pid: p.pid, restarts: p.restarts }]));
}

async function honestLoad(url: string, secs: number, refusals: Map<string, number>) {
  const note = (m: string) => refusals.set(m.split(':', 1)[0]!, (refusals.get(m.split(':', 1)[0]!) ?? 0) + 1);
  const [published, eose] = await Promise.all([honest(url, 4, 25, secs, note), reader(url, secs, 100, note)]);
  return { publish: summarize(published.map((s) => s.ms)), eose: summarize(eose) };
}

function runAttacker(plan: Plan): Promise<AttackerReport> {
  const child = spawn('nice', ['-n', '10', process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bench/byzantine/attacker.ts'), JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((res, rej) =>
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"type":"report"'));
      if (line) res(JSON.parse(line) as AttackerReport);
      else rej(new Error(`attacker ${plan.attack} exited (${code}) without a report: ${err.slice(-1500)}`));
    }),
  );
}

/** Bans of honest subjects (our node ids, the honest clients' 127.0.0.1) on any relay. */
async function honestBans(): Promise<string[]> {
  const honestSubjects = new Set([...nodes.map((n) => n.nodeId), '127.0.0.1']);
  return (await Promise.all(nodes.map(async (n) => (await bans(n)).filter((s) => honestSubjects.has(s)).map((s) => `${n.name} bans ${s.slice(0, 12)}`)))).flat();
}

async function floodRow(attack: Plan['attack'], address: string): Promise<{ honest: Record<string, string | number>; attacker: Record<string, string | number> }> {
  const procs0 = relayProcs();
  await honestLoad(a.url, 1, new Map());
  const without = await honestLoad(a.url, seconds, new Map());
  const rss0 = new Map([...procs0].map(([k, v]) => [k, v.pid ? rssMb(v.pid) : NaN]));
  const peak = new Map(rss0);
  const sampler = setInterval(() => {
    for (const [k, v] of relayProcs()) if (v.pid) peak.set(k, Math.max(peak.get(k) ?? 0, rssMb(v.pid)));
  }, 200);
  const refusals = new Map<string, number>();
  const attacker = runAttacker({ attack, url: a.url, seconds: seconds + 2, localAddress: address });
  await new Promise((r) => setTimeout(r, 1000));
  const during = await honestLoad(a.url, seconds, refusals);
  const report = await attacker;
  clearInterval(sampler);
  await new Promise((r) => setTimeout(r, 500));
  const [hb, modes, aPeers, aBans, bBans] = await Promise.all([honestBans(), Promise.all(nodes.map(mode)), peersUp(a), bans(a), bans(b)]);
  const procs1 = relayProcs();
  const restarts = [...procs1].reduce((n, [k, v]) => n + v.restarts - (procs0.get(k)?.restarts ?? 0), 0);
  const ratio = during.publish.p99 / without.publish.p99;
  const eoseRatio = during.eose.p99 / without.eose.p99;
  return {
    honest: {
      attack,
      'publish p99 w/o / during': `${fmt(without.publish.p99, 1)} / ${fmt(during.publish.p99, 1)}`,
      ratio: `${fmt(ratio, 2)}x`,
      'EOSE p99 w/o / during': `${fmt(without.eose.p99, 1)} / ${fmt(during.eose.p99, 1)}`,
      'EOSE ratio': `${fmt(eoseRatio, 2)}x`,
      'RSS growth MB': [...peak].map(([k, v]) => `${k} +${fmt(v - (rss0.get(k) ?? NaN), 0)}`).join(' '),
      'honest bans': hb.length ? hb.join('; ') : 0,
      modes: modes.join('/'),
      'A links up': `${aPeers.filter((p) => p.state === 'up').length}/${aPeers.length}`,
      restarts,
      'honest refused': refusals.size ? JSON.stringify(Object.fromEntries(refusals)) : 'none',
    },
    attacker: {
      attack,
      from: address,
      sent: report.sent,
      'first refusal / cut ms': `${report.firstRefusalMs ?? '-'} / ${report.closedMs !== null ? `${report.closedMs} (${report.closeCode})` : '-'}`,
      banned: [aBans.includes(address) ? 'a' : '', bBans.includes(address) ? 'b' : ''].filter(Boolean).join('+') || 'no',
      reconnect: report.reconnect,
      'top answers': attack === 'conn-flood' ? `opened ${report.opened}, refused ${JSON.stringify(report.refusedUpgrades)}` : Object.entries(report.answers).sort((x, y) => y[1] - x[1]).slice(0, 3).map(([k, v]) => `${k} ${v}`).join(', '),
    },
  };
}

const GOSSIP_KIND = 20780;
type Result = { probe: string; expected: string; seen: string; verdict: string };
const verdict = (ok: boolean) => (ok ? 'refused (ok)' : 'ATTACK WORKED');

async function partition8(address: string): Promise<Result> {
  const link = await NostrLink.connect(a.url, { localAddress: address });
  const answers: string[] = [];
  for (let i = 0; i < 8 && link.open; i++) {
    const r = await link.publish(fastSign({ kind: GOSSIP_KIND, created_at: Math.floor(Date.now() / 1000), tags: [], content: 'x' }, generateSecretKey()));
    answers.push(r.ok ? 'accepted' : r.message.split(':', 1)[0]!);
  }
  await link.close();
  await new Promise((r) => setTimeout(r, 4000)); // heartbeats and a gossip round
  const hb = await honestBans();
  const links = (await peersUp(a)).filter((p) => p.state === 'up').length;
  const ok = !answers.includes('accepted') && hb.length === 0 && links === (await peersUp(a)).length;
  return { probe: 'partition-8', expected: 'a refuses all 8, no relay bans another, links up', seen: `answers ${JSON.stringify(answers)}; honest bans ${hb.length}; a's links up ${links}; a bans ${address}: ${(await bans(a)).includes(address)}`, verdict: verdict(ok) };
}

async function authRandomKey(address: string): Promise<Result[]> {
  const key = generateSecretKey();
  const evil = 'ws://127.0.0.1:9/learned-from-auth';
  const ws = new WebSocket(a.url, { localAddress: address, perMessageDeflate: false });
  const frames: unknown[][] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d)) as unknown[]));
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const waitFor = async (match: (f: unknown[]) => boolean) => {
    for (let i = 0; i < 100; i++) {
      const f = frames.find(match);
      if (f) return f;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  };
  const challenge = String((await waitFor((f) => f[0] === 'AUTH'))?.[1]);
  const auth = (k: Uint8Array, tags: string[][] = []) => finalizeEvent({ kind: 22242, created_at: Math.floor(Date.now() / 1000), tags: [['relay', a.url], ['challenge', challenge], ...tags], content: '' }, k);
  const first = auth(key, [['peer', evil]]);
  ws.send(JSON.stringify(['AUTH', first]));
  const ok1 = await waitFor((f) => f[0] === 'OK' && f[1] === first.id);
  // Its own event must come back to its own subscription (a peer would not get its own events echoed).
  ws.send(JSON.stringify(['REQ', 'mine', { authors: [getPublicKey(key)], since: Math.floor(Date.now() / 1000) - 5 }]));
  await waitFor((f) => f[0] === 'EOSE' && f[1] === 'mine');
  const ev = craft.valid(key);
  ws.send(JSON.stringify(['EVENT', ev]));
  const echoed = await waitFor((f) => f[0] === 'EVENT' && f[1] === 'mine' && (f[2] as { id: string }).id === ev.id);
  // A second AUTH, now with a peer's node id would need its key; any key must be refused as a role change.
  const second = auth(generateSecretKey());
  ws.send(JSON.stringify(['AUTH', second]));
  const ok2 = await waitFor((f) => f[0] === 'OK' && f[1] === second.id);
  ws.terminate();
  const inbound = await get<{ inbound: Array<{ nodeId: string }> }>(a, '/admin/peers');
  const learned = (await peersUp(a)).some((p) => p.url.includes('127.0.0.1:9'));
  return [
    { probe: 'auth-random-key: role', expected: 'OK true "...as a client"; not in /admin/peers inbound', seen: `${JSON.stringify(ok1?.slice(2))}; inbound peer: ${inbound.inbound.some((p) => p.nodeId === getPublicKey(key))}`, verdict: verdict(/client/.test(String(ok1?.[3])) && !inbound.inbound.some((p) => p.nodeId === getPublicKey(key))) },
    { probe: 'auth-random-key: own events echoed', expected: 'its event comes back on its subscription', seen: echoed ? 'echoed' : 'not echoed', verdict: echoed ? 'client treatment (ok)' : 'ATTACK WORKED' },
    { probe: 'auth-random-key: peer tag', expected: `a does not dial ${evil}`, seen: learned ? 'dialled' : 'not dialled', verdict: verdict(!learned) },
    // NIP-42 lets a client AUTH again as another client key (NIP-70 needs it); what must not change is its role.
    { probe: 'auth-random-key: second AUTH (another random key)', expected: 'OK true as a client again (allowed) — never a peer', seen: JSON.stringify(ok2?.slice(2)), verdict: /client/.test(String(ok2?.[3])) || ok2?.[2] === false ? 'role unchanged (ok)' : 'ATTACK WORKED' },
  ];
}

async function nip70(address: string): Promise<Result[]> {
  const author = generateSecretKey();
  const link = await NostrLink.connect(a.url, { localAddress: address });
  const protectedEvent = () => fastSign({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['-']], content: `protected ${Math.random()}` }, author);
  const anon = await link.publish(protectedEvent());
  await link.close();
  const other = await NostrLink.connect(a.url, { localAddress: address });
  await other.authenticate(generateSecretKey(), a.url, 5000);
  const asOther = await other.publish(protectedEvent());
  await other.close();
  const own = await NostrLink.connect(a.url, { localAddress: address });
  await own.authenticate(author, a.url, 5000);
  const asAuthor = await own.publish(protectedEvent());
  await own.close();
  return [
    { probe: 'nip70: unauthenticated', expected: 'OK false auth-required', seen: JSON.stringify(anon), verdict: verdict(!anon.ok && /^auth-required/.test(anon.message)) },
    { probe: 'nip70: AUTH as another key', expected: 'OK false restricted', seen: JSON.stringify(asOther), verdict: verdict(!asOther.ok && /^restricted/.test(asOther.message)) },
    { probe: 'nip70: AUTH as the author', expected: 'OK true', seen: JSON.stringify(asAuthor), verdict: asAuthor.ok ? 'accepted (ok)' : 'WRONG: refused' },
  ];
}

function raw(n: Node, method: string, path: string, headers: Record<string, string>, body?: string): Promise<number> {
  const u = new URL(n.admin + path);
  return new Promise((res, rej) => {
    const req = request({ host: u.hostname, port: u.port, method, path: u.pathname, headers }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('error', rej);
    req.end(body);
  });
}

async function adminProbes(): Promise<Result[]> {
  const ban = JSON.stringify({ address: '203.0.113.99', reason: 'live csrf probe', duration: '30s' });
  const cases: Array<[string, string, string, Record<string, string>, string | undefined]> = [
    ['GET from a foreign Origin', 'GET', '/admin/bans', { origin: 'http://evil.example' }, undefined],
    ['POST ban from a foreign Origin (CSRF)', 'POST', '/admin/peers/ban', { origin: 'http://evil.example', 'content-type': 'text/plain' }, ban],
    ['POST ban, cross-site fetch, no Origin', 'POST', '/admin/peers/ban', { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' }, ban],
    ['GET with Host: evil.example (DNS rebinding)', 'GET', '/admin/status', { host: 'evil.example:8080' }, undefined],
  ];
  const out: Result[] = [];
  for (const [what, method, path, headers, body] of cases) {
    const status = await raw(a, method, path, headers, body);
    out.push({ probe: `admin: ${what}`, expected: '403/415', seen: `HTTP ${status}`, verdict: verdict(status === 403 || status === 415) });
  }
  const banned = (await bans(a)).includes('203.0.113.99');
  out.push({ probe: 'admin: CSRF ban took effect?', expected: 'no ban of 203.0.113.99', seen: banned ? 'banned' : 'not banned', verdict: verdict(!banned) });
  return out;
}

console.log(`live attacks on ${nodes.map((n) => `relay-${n.name} ${n.url}`).join(', ')}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const want = (n: string) => !only || only.includes(n);
const rows: Array<{ honest: Record<string, string | number>; attacker: Record<string, string | number> }> = [];
let addr = 20;
for (const attack of CLIENT_ATTACKS) {
  const address = `127.0.0.${addr++}`;
  if (!want(attack)) continue;
  rows.push(await floodRow(attack, address));
  console.error(`  ${attack} done (load ${loadavg()[0]!.toFixed(2)})`);
}
if (rows.length) {
  printTable(`floods on relay-a; honest: 4 x 25 events/s + 10 REQ/s on relay-a for ${seconds} s without, then during; ms`, rows.map((r) => r.honest));
  printTable('attacker side', rows.map((r) => r.attacker));
}
const results: Result[] = [];
if (want('partition-8')) results.push(await partition8(`127.0.0.${addr++}`));
if (want('auth-random-key')) results.push(...(await authRandomKey(`127.0.0.${addr++}`)));
if (want('nip70')) results.push(...(await nip70(`127.0.0.${addr++}`)));
if (want('admin')) results.push(...(await adminProbes()));
if (results.length) printTable('one-shot probes', results);
console.log(`\nload average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
process.exit(0);

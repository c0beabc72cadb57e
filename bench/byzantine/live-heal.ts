// The "honest peers ban each other on a large heal", tried against a running cluster (`make up`):
//
//   npx tsx bench/byzantine/live-heal.ts [--dir .cluster] [--events 25000]
//
// Isolates relay-a (chaos partition, as `make chaos-partition SHAPE=isolate TARGET=a`), publishes --events fresh
// events to it (25 connections from 5 loopback addresses, inside the default client limits), heals (`chaos reset`),
// then waits until relay-b's PostgreSQL holds them all. Prints the time to converge, bans on every relay (must be
// none), the lowest score each relay gives the other, and the modes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { generateSecretKey } from 'nostr-tools/pure';
import { intOption, parseArgs } from '../lib/args.js';
import { REPO_ROOT } from '../lib/relay-child.js';
import { fmt, printTable } from '../lib/table.js';
import { fastSign, NostrLink } from '../../test/helpers/malicious-node.js';

const { values } = parseArgs({ options: { dir: { type: 'string' }, events: { type: 'string' } } });
const dir = resolve(values.dir ?? join(REPO_ROOT, '.cluster'));
const total = intOption(values, 'events', 25_000);
const { layout } = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as {
  layout: { host: string; postgres: { port: number; user: string }; nodes: Array<{ name: string; relayPort: number; adminPort: number; database: string }> };
};
const [a, b] = layout.nodes as [(typeof layout.nodes)[0], (typeof layout.nodes)[0]];
const admin = async <T>(n: typeof a, path: string) => (await (await fetch(`http://${layout.host}:${n.adminPort}${path}`)).json()) as T;

function chaos(...args: string[]): Promise<void> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'cluster/dist/cli/chaos.js'), '--dir', dir, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((res, rej) => child.once('exit', (code) => (code === 0 ? res() : rej(new Error(`chaos ${args.join(' ')} exited ${code}`)))));
}

async function countSince(n: typeof a, since: number, marker: string): Promise<number> {
  const c = new pg.Client({ host: layout.host, port: layout.postgres.port, user: layout.postgres.user, database: n.database });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE created_at >= $1 AND content LIKE $2', [since, `${marker}%`])).rows[0]!.n);
  } finally {
    await c.end();
  }
}

const marker = `live-heal ${Date.now()}`;
const since = Math.floor(Date.now() / 1000) - 1;
console.log(`live heal on relay-a/relay-b (${total} events); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
await chaos('partition', '--shape', 'isolate', '--node', 'a', '--existing', 'reset');
const started = Date.now();
// 25 connections, 5 per address: 1,000 events per connection and 5,000 per address and per key stay under the default
// connection (2,000/10 s), IP (10,000/10 s) and pubkey (2,000/10 s) limits.
const conns = 25;
const per = Math.ceil(total / conns);
let accepted = 0;
const refused: Record<string, number> = {};
await Promise.all(
  Array.from({ length: conns }, async (_, i) => {
    const key = generateSecretKey();
    const events = Array.from({ length: per }, (_, j) => fastSign({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: `${marker} ${i}/${j}` }, key));
    const link = await NostrLink.connect(`ws://${layout.host}:${a.relayPort}`, { localAddress: `127.0.0.${40 + (i % 5)}`, authenticate: false });
    for (let j = 0; j < events.length; j += 50) {
      const answers = await Promise.all(events.slice(j, j + 50).map((e) => link.publish(e)));
      for (const r of answers) {
        if (r.ok) accepted++;
        else refused[r.message.split(':', 1)[0]!] = (refused[r.message.split(':', 1)[0]!] ?? 0) + 1;
      }
    }
    await link.close();
  }),
);
const published = Date.now();
const onB = await countSince(b, since, marker);
await chaos('reset');
const healed = Date.now();
let converged = NaN;
let last = onB;
for (let i = 0; i < 600; i++) {
  last = await countSince(b, since, marker);
  if (last >= accepted) {
    converged = Date.now() - healed;
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
const nodes = [a, b];
const ids = await Promise.all(nodes.map(async (n) => (await admin<{ nodeId: string }>(n, '/admin/status')).nodeId));
const rows = await Promise.all(
  nodes.map(async (n, i) => {
    const bans = (await admin<{ bans: Array<{ subject: string; reason: string }> }>(n, '/admin/bans')).bans;
    const scores = (await admin<{ scores: Array<{ subject: string; score: number; offences: Record<string, number> }> }>(n, '/admin/reputation/scores')).scores;
    const other = scores.find((s) => s.subject === ids[1 - i]);
    return {
      relay: `relay-${n.name}`,
      mode: (await admin<{ mode: string }>(n, '/admin/status')).mode,
      bans: bans.length ? bans.map((x) => `${x.subject.slice(0, 12)} (${x.reason})`).join('; ') : 'none',
      "other relay's score": other ? `${other.score} ${JSON.stringify(other.offences)}` : '100 (no offence)',
    };
  }),
);
printTable('after the heal', rows);
printTable('heal', [
  {
    'published to a (isolated)': accepted,
    refused: JSON.stringify(refused),
    'publish s': fmt((published - started) / 1000, 1),
    'on b before heal': onB,
    'on b at the end': last,
    'converged after heal s': Number.isFinite(converged) ? fmt(converged / 1000, 1) : 'NOT within 300 s',
  },
]);
console.log(`\nload average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
process.exit(0);

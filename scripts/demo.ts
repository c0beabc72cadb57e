// `make demo`: start a relay on the local PostgreSQL and Redis, publish signed events with nostr-tools,
// read them back, show what the admin API says, stop cleanly.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { Relay as NostrRelay, useWebSocketImplementation } from 'nostr-tools/relay';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';

useWebSocketImplementation(WebSocket);

const root = resolve(import.meta.dirname, '..');
const adminUrl = process.env.DEMO_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `relay_demo_${process.pid}`;
const say = (s: string) => process.stdout.write(s + '\n');

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'relay-demo-'));
  const dbUrl = adminUrl.replace(/\/[^/]*$/, '/' + dbName);
  say(`1. starting a relay on PostgreSQL database ${dbName} and Redis 127.0.0.1:6379`);
  const child = spawn(process.execPath, [join(root, 'relay/dist/main.js'), 'start', '--port', '0', '--admin-port', '0',
    '--database-url', dbUrl, '--redis-url', 'redis://127.0.0.1:6379/0', '--redis-key-prefix', `demo:${process.pid}:`, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<{ relayPort: number; adminPort: number }>((res, rej) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (line.includes('"relay started"')) res(JSON.parse(line) as { relayPort: number; adminPort: number });
      }
    });
    child.once('exit', (code) => rej(new Error(`relay exited with ${code}`)));
  });
  const url = `ws://127.0.0.1:${ports.relayPort}`;
  say(`   relay at ${url}, admin API at http://127.0.0.1:${ports.adminPort}`);
  try {
    const relay = await NostrRelay.connect(url);
    const sk = generateSecretKey();
    say(`2. publishing 5 signed events as ${getPublicKey(sk).slice(0, 16)}… with nostr-tools`);
    const published = [];
    for (let i = 1; i <= 5; i++) {
      const ev = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['t', 'demo']], content: `demo note ${i}` }, sk);
      const t0 = performance.now();
      await relay.publish(ev);
      say(`   OK true for ${ev.id.slice(0, 16)}… in ${(performance.now() - t0).toFixed(1)} ms (after commit)`);
      published.push(ev.id);
    }
    const tampered = finalizeEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: 'original' }, sk);
    try {
      await relay.publish({ ...tampered, content: 'tampered' });
      say('   !! a tampered event was accepted');
    } catch (err) {
      say(`3. a tampered event is refused: ${(err as Error).message}`);
    }
    const back: string[] = [];
    await new Promise<void>((res) => {
      relay.subscribe([{ '#t': ['demo'] }], { onevent: (e) => back.push(e.content), oneose: () => res() });
    });
    say(`4. read back with REQ {"#t":["demo"]}: ${back.length} events, newest first: ${back.join(', ')}`);
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    const rows = await db.query('SELECT count(*)::int AS n FROM events');
    await db.end();
    say(`5. PostgreSQL holds ${rows.rows[0].n} events`);
    const status = (await (await fetch(`http://127.0.0.1:${ports.adminPort}/admin/status`)).json()) as Record<string, unknown>;
    const metrics = (await (await fetch(`http://127.0.0.1:${ports.adminPort}/admin/metrics`)).json()) as Record<string, unknown>;
    say(`6. /admin/status: mode=${status.mode} cache=${status.cache}; /admin/metrics: publish→OK ${JSON.stringify(metrics.publishToOkMs)}, signature failures ${metrics.signatureFailures}`);
    relay.close();
    if (back.length !== published.length) throw new Error(`expected ${published.length} events back, got ${back.length}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => child.once('exit', res));
    say('7. relay stopped cleanly (SIGTERM)');
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

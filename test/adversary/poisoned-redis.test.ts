import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freshRedisNamespace } from '../helpers/db.js';
import { startPrivatePostgres } from '../helpers/private-instances.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { idsInDatabase, until } from '../outage/helpers/workload.js';

// Redis is a dependency, not a trusted peer. Bad values planted in the relay's own keys (write buffer, recent-events
// cache, dedup marks) must be refused like a client's bad event: quarantined, logged, counted, never stored, never
// served, never fatal. Before this, `{"id":"x"}` in the write buffer crashed the replay and the relay crash-looped.
// Not `fast`: the instance is killed, and synchronous_commit=off can lose recent commits (the schema, even) with it.
const pgi = await startPrivatePostgres();
const ns = freshRedisNamespace();
const dataDir = mkdtempSync(join(tmpdir(), 'poisoned-redis-'));
const redis = new Redis(ns.url);
let relay: RelayProcess | undefined;
t.teardown(async () => {
  await relay?.stop();
  redis.disconnect();
  await ns.cleanup();
  await pgi.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const start = () => startRelay({ databaseUrl: pgi.url, redisUrl: ns.url, redisKeyPrefix: ns.prefix, dataDir });
const status = async () => (await relay!.admin<{ mode: string; cache: string }>('/admin/status')).body;

/** Sum of a Prometheus counter's samples whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await relay!.admin<string>('/metrics')).body;
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

t.test('a poisoned write buffer is quarantined at replay; good entries land; the relay stays up across restarts', async (t) => {
  relay = await start();
  const client = await RawClient.connect(relay.url);
  const first = signed({ content: 'published normally' });
  t.same(await client.publish(first), { ok: true, message: '' });
  await client.close();
  t.equal(await relay.stop(), 0, 'clean stop');

  const good1 = signed({ content: 'only in the write buffer, 1' });
  const good2 = signed({ content: 'only in the write buffer, 2' });
  const forgedSig = { ...signed({ content: 'valid shape and id, someone else\'s signature' }), sig: signed().sig };
  const wrongId = { ...signed({ content: 'id of another event' }), id: good1.id.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
  const key = `${ns.prefix}write-buffer`;
  await redis.rpush(
    key,
    '{"id":"x"}',
    JSON.stringify(good1),
    JSON.stringify(forgedSig),
    Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22]),
    '"a JSON string"',
    '[1,2,3]',
    JSON.stringify(wrongId),
    JSON.stringify({ ...good2, content: 'x'.repeat(200_000) }),
    JSON.stringify(good2),
  );

  // A relay starting with a non-empty buffer replays it (the path taken after an outage); the old code died here.
  relay = await start();
  await relay.waitForLog(/^database recovered$/, 20_000);
  await until('mode normal', async () => (await status()).mode === 'normal', 10_000);
  t.equal(relay.child.exitCode, null, 'the relay is still running');
  t.equal(await redis.llen(key), 0, 'the write buffer is drained');

  const { found } = await idsInDatabase(pgi.url, [first.id, good1.id, good2.id, forgedSig.id, wrongId.id]);
  t.ok(found.has(good1.id) && found.has(good2.id), 'the good buffered events are in PostgreSQL');
  t.notOk(found.has(forgedSig.id), 'the forged signature is not stored');
  t.notOk(found.has(wrongId.id), 'the event under a wrong id is not stored');

  t.equal(await metric('relay_redis_poisoned_total', { source: 'write-buffer', reason: 'signature' }), 1, 'forged signature counted');
  t.equal(await metric('relay_redis_poisoned_total', { source: 'write-buffer', reason: 'id' }), 1, 'wrong id counted');
  t.equal(await metric('relay_redis_poisoned_total', { source: 'write-buffer', reason: 'shape' }), 3, '{"id":"x"}, a JSON string and [1,2,3] counted as shape');
  t.equal(await metric('relay_redis_poisoned_total', { source: 'write-buffer', reason: 'json' }), 1, 'garbage bytes counted');
  t.equal(await metric('relay_redis_poisoned_total', { source: 'write-buffer', reason: 'size' }), 1, 'the oversized entry counted');
  const quarantined = (await redis.lrange(`${ns.prefix}quarantine`, 0, -1)).map((r) => JSON.parse(r) as { source: string; reason: string; raw: string });
  t.equal(quarantined.length, 7, 'every bad entry is kept in the quarantine list');
  t.ok(quarantined.every((q) => q.source === 'write-buffer' && q.raw.length <= 4096), 'with its source, raw bytes truncated');
  t.ok(relay.logs.some((l) => l.msg === 'redis entry quarantined' && l.reason === 'signature'), 'logged');

  // Restart once more: nothing left to trip over.
  t.equal(await relay.stop(), 0);
  relay = await start();
  await until('mode normal', async () => (await status()).mode === 'normal', 10_000);
  t.equal(relay.child.exitCode, null, 'the relay starts again and stays up');
});

t.test('a planted dedup mark does not turn a new event into a phantom duplicate', async (t) => {
  const fresh = signed({ content: 'never seen before' });
  // What a plain SET would leave (the old mark format, or anyone with access to Redis).
  await redis.set(`${ns.prefix}seen:${fresh.id}`, '1', 'EX', 600);
  const client = await RawClient.connect(relay!.url);
  t.same(await client.publish(fresh), { ok: true, message: '' }, 'stored, not answered "duplicate:"');
  await client.close();
  t.ok((await idsInDatabase(pgi.url, [fresh.id])).found.has(fresh.id), 'and it is in PostgreSQL');
  t.equal(await metric('relay_redis_poisoned_total', { source: 'dedup-mark' }), 1, 'the bad mark is counted');
  // The relay's own marks still work: a re-submission is a duplicate.
  const again = await RawClient.connect(relay!.url);
  t.match(await again.publish(fresh), { ok: true, message: /^duplicate:/ });
  await again.close();
});

t.test('poisoned cache entries are not served while degraded and do not put the cache into fallback', async (t) => {
  const served = signed({ content: 'cached, good', kind: 1 });
  const client = await RawClient.connect(relay!.url);
  t.same(await client.publish(served), { ok: true, message: '' });
  // Plant bad values in the recent-events cache: garbage, a forged signature, an event filed under another id.
  const forged = { ...signed({ content: 'cached, forged' }), sig: signed().sig };
  const stranger = signed({ content: 'cached under the wrong id' });
  const now = Math.floor(Date.now() / 1000);
  const garbageId = 'a'.repeat(64);
  const misfiledId = 'b'.repeat(64);
  await redis
    .multi()
    .zadd(`${ns.prefix}recent`, now, garbageId, now, forged.id, now, misfiledId)
    .hset(`${ns.prefix}recent:raw`, garbageId, '{not json', forged.id, JSON.stringify(forged), misfiledId, JSON.stringify(stranger))
    .exec();

  await pgi.kill();
  await until('degraded', async () => (await status()).mode === 'degraded', 10_000);
  const res = await client.query('degraded-read', { kinds: [1], limit: 100 });
  t.ok(res.eose, 'the REQ ends with EOSE');
  const ids = res.events.map((e) => e.id);
  t.ok(ids.includes(served.id), 'the good cached event is served');
  t.notOk(ids.includes(forged.id), 'the forged one is not');
  t.notOk(ids.includes(stranger.id) || ids.includes(misfiledId), 'nor the misfiled one');
  t.equal((await status()).cache, 'ok', 'the cache is not declared down over bad data');
  t.equal(await metric('relay_redis_poisoned_total', { source: 'cache' }), 3, 'the three bad cache entries are counted');
  t.equal(await redis.hexists(`${ns.prefix}recent:raw`, forged.id), 0, 'and dropped from the cache');
  await client.close();

  await pgi.start();
  await until('normal', async () => (await status()).mode === 'normal', 20_000);
  t.equal(relay!.child.exitCode, null, 'the relay is still running');
});

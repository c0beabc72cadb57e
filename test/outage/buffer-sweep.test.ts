// When Redis comes back while the relay is in normal mode, the write buffer is swept: entries a replay could not read
// while Redis was away (pushed just before it went, or the only copy of a lost journal) are checked like a client's
// events, the good ones stored, the bad ones quarantined, and the buffer trimmed. The outage is a real partition of
// the relay's Redis link by the chaos sidecar; the entries are planted in Redis behind the relay's back meanwhile.
import t from 'tap';
import { Redis } from 'ioredis';
import { freshDatabase, freshRedisNamespace } from '../helpers/db.js';
import { startRelay } from '../helpers/relay-process.js';
import { RawClient, signed } from '../helpers/ws-client.js';
import { startSidecar } from './helpers/sidecar-process.js';
import { idsInDatabase, until } from './helpers/workload.js';

const db = await freshDatabase('outage_buffer_sweep');
const ns = freshRedisNamespace();
const sidecar = await startSidecar([{ name: 'redis', upstream: '127.0.0.1:6379' }]);
const relay = await startRelay({ databaseUrl: db.url, redisUrl: `redis://127.0.0.1:${sidecar.ports.redis}/0`, redisKeyPrefix: ns.prefix });
const direct = new Redis(ns.url);
t.teardown(async () => {
  direct.disconnect();
  await relay.stop();
  await relay.cleanup();
  await sidecar.stop();
  await db.drop();
  await ns.cleanup();
});
const cacheState = async () => (await relay.admin<{ mode: string; cache: string }>('/admin/status')).body;

t.test('entries left in the write buffer are swept into PostgreSQL when Redis returns; bad ones quarantined', async (t) => {
  const client = await RawClient.connect(relay.url);
  t.same(await client.publish(signed({ content: 'before the Redis outage' })), { ok: true, message: '' });
  await until('cache ok', async () => (await cacheState()).cache === 'ok', 10_000);

  const fault = await sidecar.addToxic('redis', { type: 'partition', attributes: { new: 'refuse', existing: 'reset' } });
  await until('cache fallback mode', async () => (await cacheState()).cache === 'fallback-mode', 20_000);
  t.equal((await cacheState()).mode, 'normal', 'PostgreSQL is fine: the store stays in normal mode');

  const left = signed({ content: 'only in the write buffer' });
  const forged = { ...signed({ content: 'forged' }), sig: signed().sig };
  const key = `${ns.prefix}write-buffer`;
  await direct.rpush(key, JSON.stringify(left), '{"id":"x"}', JSON.stringify(forged));
  const quarantineBefore = await direct.llen(`${ns.prefix}quarantine`);

  await sidecar.removeToxic('redis', fault);
  await until('cache ok again', async () => (await cacheState()).cache === 'ok', 20_000);
  await until('the buffer swept', async () => (await direct.llen(key)) === 0, 20_000);
  const { found } = await idsInDatabase(db.url, [left.id, forged.id]);
  t.ok(found.has(left.id), 'the good entry is stored in PostgreSQL');
  t.notOk(found.has(forged.id), 'the forged one is not');
  const served = await client.query('swept', { ids: [left.id] });
  t.same(served.events.map((e) => e.id), [left.id], 'and the good one is served');
  t.ok((await direct.llen(`${ns.prefix}quarantine`)) >= quarantineBefore + 2, 'both bad entries are quarantined');
  t.ok(relay.logs.some((l) => l.msg === 'write buffer swept after Redis came back'), 'the sweep is logged');
  t.equal(relay.child.exitCode, null, 'the relay is still running');
  await client.close();
});

// Scores and the ban list in process, with a controlled clock: penalties, slow recovery, the threshold firing once,
// escalation and its cap, expiry, and a ban that stays in force while PostgreSQL refuses the write.
import t from 'tap';
import { pino } from 'pino';
import { ScoreBoard } from '../../relay/src/reputation/scores.js';
import { BanList } from '../../relay/src/reputation/ban-list.js';
import type { BanStore } from '../../relay/src/reputation/ban-store.js';
import type { Ban } from '../../relay/src/reputation/ban.js';
import { DEFAULT_PENALTIES, parsePenalties } from '../../relay/src/reputation/offences.js';

const silent = pino({ level: 'silent' });
const node = 'ab'.repeat(32);

t.test('penalties, recovery over time, threshold fires once per crossing', async (t) => {
  let now = 0;
  const scores = new ScoreBoard({ penalties: DEFAULT_PENALTIES, recoveryPerMinute: 10, banThreshold: 0 }, () => now);
  const crossings: string[] = [];
  scores.onThreshold((subject) => crossings.push(subject));
  t.equal(scores.penalize(node, 'signature'), 80);
  t.equal(scores.penalize(node, 'malformed'), 75);
  now += 60_000;
  t.equal(scores.score(node), 85, 'ten points back after a minute');
  now += 10 * 60_000;
  t.equal(scores.score(node), 100, 'never above 100');
  for (let i = 0; i < 5; i++) scores.penalize(node, 'id');
  t.same(crossings, [node], 'crossed once');
  scores.penalize(node, 'id');
  t.same(crossings, [node], 'further offences below the threshold do not fire again');
  t.match(scores.list()[0], { subject: node, type: 'peer', offences: { signature: 1, malformed: 1, id: 6 } });
  scores.reset(node);
  t.equal(scores.score(node), 100, 'reset after a ban: a fresh start');
  t.same(parsePenalties(['rate-limit=0', 'malformed=2.5'])['malformed'], 2.5);
  t.throws(() => parsePenalties(['typo=3']));
});

class MemoryStore {
  saved = new Map<string, Ban>();
  lifted = new Set<string>();
  failing = false;
  async load() {
    return { active: [], strikes: new Map<string, number>() };
  }
  async save(ban: Ban) {
    if (this.failing) throw new Error('connection refused');
    this.saved.set(ban.subject, ban);
  }
  async lift(subject: string) {
    if (this.failing) throw new Error('connection refused');
    this.lifted.add(subject);
  }
}

t.test('automatic bans escalate up to the cap, expire, and notify listeners', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore();
  const bans = new BanList(store as unknown as BanStore, { baseSeconds: 10, escalation: 4, maxSeconds: 100 }, silent, () => now);
  await bans.ready();
  t.teardown(() => bans.close());
  const banned: string[] = [];
  bans.onBanned((s) => banned.push(s));
  const lengths: number[] = [];
  for (let i = 0; i < 4; i++) {
    const ban = bans.autoBan(node, 'test')!;
    lengths.push((ban.expiresAt! - ban.bannedAt) / 1000);
    t.ok(bans.isBanned(node.toUpperCase()), 'node ids match case-insensitively');
    t.equal(bans.autoBan(node, 'again'), undefined, 'no second ban while banned');
    now = ban.expiresAt! + 1;
    t.notOk(bans.isBanned(node), 'expired');
  }
  t.same(lengths, [10, 40, 100, 100], '10 s, x4, capped at 100 s');
  await new Promise((r) => setImmediate(r));
  t.equal(banned.length, 4, 'listeners told of each ban (after the current I/O turn)');
  await bans.persisted();
  t.equal(store.saved.get(node)?.strikes, 4);
  t.ok(bans.isBanned('::ffff:10.0.0.1') === false && bans.ban('10.0.0.1', { reason: 'x', origin: 'manual', durationSeconds: null }).type === 'client');
  t.ok(bans.isBanned('::ffff:10.0.0.1'), 'IPv4-mapped addresses fold to IPv4');
});

t.test('a ban stays in force while PostgreSQL refuses the write, and is stored once it answers', async (t) => {
  const store = new MemoryStore();
  const bans = new BanList(store as unknown as BanStore, { baseSeconds: 10, escalation: 2, maxSeconds: 100 }, silent);
  await bans.ready();
  t.teardown(() => bans.close());
  store.failing = true;
  bans.ban(node, { reason: 'manual', origin: 'manual', durationSeconds: null });
  await t.rejects(bans.persisted(), /connection refused/, 'the write failure is reported');
  t.ok(bans.isBanned(node), 'in force anyway');
  store.failing = false;
  await new Promise((r) => setTimeout(r, 1500)); // the sweep retries every second
  t.ok(store.saved.has(node), 'stored once PostgreSQL answers');
});

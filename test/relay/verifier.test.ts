// The noble and tiny-secp256k1 (WASM pool) verifiers against the BIP-340 vectors, each other, nostr-tools events,
// malformed input, and worker crashes/hangs in the pool. The native addon has its own file (native-verifier.test.ts).
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { computeEventId } from '../../relay/src/nostr/event.js';
import { NobleVerifier, nobleVerifySync } from '../../relay/src/crypto/noble-verifier.js';
import { WorkerPoolVerifier } from '../../relay/src/crypto/worker-pool-verifier.js';
import { createVerifier } from '../../relay/src/crypto/create-verifier.js';
import { MainThreadVerifier } from '../../relay/src/crypto/main-thread-verifier.js';
import type { NativeLoad } from '../../relay/src/crypto/native-secp256k1.js';
import type { SignatureVerifier } from '../../relay/src/crypto/types.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtureCsv = path.join(repoRoot, 'test/fixtures/bip340-test-vectors.csv');
// The upstream copy lives in the sibling shared/ checkout; when present the fixture must not have drifted from it.
const sharedCsv = path.resolve(repoRoot, '../shared/vectors/bip340-test-vectors.csv');

interface Vector {
  index: number;
  pubkey: string;
  message: string;
  signature: string;
  expected: boolean;
  comment: string;
}

function loadVectors(): Vector[] {
  const lines = readFileSync(fixtureCsv, 'utf8').trim().split(/\r?\n/);
  const header = lines.shift();
  if (header !== 'index,secret key,public key,aux_rand,message,signature,verification result,comment') {
    throw new Error(`unexpected vector header: ${header}`);
  }
  return lines.map((line) => {
    const cols = line.split(',');
    return {
      index: Number(cols[0]),
      pubkey: cols[2]!.toLowerCase(),
      message: cols[4]!.toLowerCase(),
      signature: cols[5]!.toLowerCase(),
      expected: cols[6] === 'TRUE',
      comment: cols.slice(7).join(','),
    };
  });
}

function flipHexDigit(hex: string, at: number): string {
  const c = hex[at]!;
  return hex.slice(0, at) + (c === '0' ? '1' : '0') + hex.slice(at + 1);
}

const noble = new NobleVerifier();
const pool = new WorkerPoolVerifier({ workers: 2 });
t.teardown(async () => {
  await noble.close();
  await pool.close();
});

t.test('fixture matches the shared vectors when the sibling checkout is present', async (t) => {
  if (!existsSync(sharedCsv)) {
    t.pass('no ../shared checkout; the committed fixture is authoritative');
    return;
  }
  t.equal(readFileSync(fixtureCsv, 'utf8'), readFileSync(sharedCsv, 'utf8'));
});

t.test('BIP-340 vectors', async (t) => {
  const vectors = loadVectors();
  t.equal(vectors.length, 19, 'all vector rows parsed');
  let applicable = 0;
  let trues = 0;
  let falses = 0;
  for (const v of vectors) {
    if (v.message.length !== 64) {
      // Nostr signs 32-byte event ids only; these rows (15-18) exercise other message sizes.
      t.comment(`vector ${v.index} skipped: ${v.message.length / 2}-byte message, verifiers take 32-byte ids only`);
      continue;
    }
    applicable++;
    if (v.expected) trues++;
    else falses++;
    const label = `vector ${v.index} expects ${v.expected}${v.comment ? ` (${v.comment})` : ''}`;
    t.equal(await noble.verify(v.message, v.pubkey, v.signature), v.expected, `noble: ${label}`);
    t.equal(await pool.verify(v.message, v.pubkey, v.signature), v.expected, `pool: ${label}`);
  }
  t.equal(applicable, 15, 'vectors 0-14 are applicable');
  t.ok(trues >= 5 && falses >= 9, `both outcomes covered (${trues} true, ${falses} false)`);

  const v0 = vectors[0]!;
  t.equal(await pool.verify(v0.message, v0.pubkey, v0.signature.toUpperCase()), false, 'uppercase hex is malformed for nostr (pool)');
  t.equal(await noble.verify(v0.message, v0.pubkey, v0.signature.toUpperCase()), false, 'uppercase hex is malformed for nostr (noble)');
});

t.test('agree with each other on nostr-tools events and tampered copies', async (t) => {
  const items: Array<{ id: string; pubkey: string; sig: string; expected: boolean; what: string }> = [];
  const ids = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const ev = finalizeEvent(
      { kind: i % 3 === 0 ? 1 : 30_000 + i, created_at: 1_700_000_000 + i, tags: [['t', `n${i}`]], content: `event ${i} ✓` },
      generateSecretKey(),
    );
    ids.add(ev.id);
    if (i === 0) t.equal(ev.id, computeEventId(ev), 'nostr-tools id matches computeEventId');
    items.push({ id: ev.id, pubkey: ev.pubkey, sig: ev.sig, expected: true, what: `event ${i}` });
    items.push({ id: ev.id, pubkey: ev.pubkey, sig: flipHexDigit(ev.sig, i % 128), expected: false, what: `event ${i} sig digit ${i % 128} flipped` });
    items.push({ id: flipHexDigit(ev.id, i % 64), pubkey: ev.pubkey, sig: ev.sig, expected: false, what: `event ${i} id altered` });
    const other = items[Math.max(0, items.length - 6)]!;
    if (other.pubkey !== ev.pubkey) items.push({ id: ev.id, pubkey: other.pubkey, sig: ev.sig, expected: false, what: `event ${i} wrong pubkey` });
  }
  t.equal(ids.size, 200, 'events are distinct');

  const fromPool = await pool.verifyMany(items);
  const fromNoble = await noble.verifyMany(items);
  const singly = await Promise.all(items.map((it) => pool.verify(it.id, it.pubkey, it.sig)));
  let mismatches = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (fromPool[i] !== it.expected || fromNoble[i] !== it.expected || singly[i] !== it.expected) {
      mismatches++;
      t.fail(`${it.what}: expected ${it.expected}, pool ${fromPool[i]}, noble ${fromNoble[i]}, pool.verify ${singly[i]}`);
    }
  }
  t.equal(mismatches, 0, `all ${items.length} items agree`);
  t.equal(fromPool.filter(Boolean).length, 200, 'exactly the 200 untampered events verify');
  const s = pool.stats();
  t.ok(s.batchesSent < s.itemsVerified / 10, `requests were micro-batched (${s.itemsVerified} items in ${s.batchesSent} messages)`);
});

t.test('malformed input resolves false and never throws', async (t) => {
  const ev = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'x' }, generateSecretKey());
  const cases: Array<[string, unknown, unknown, unknown]> = [
    ['empty strings', '', '', ''],
    ['short id', ev.id.slice(2), ev.pubkey, ev.sig],
    ['long pubkey', ev.id, ev.pubkey + '00', ev.sig],
    ['short sig', ev.id, ev.pubkey, ev.sig.slice(0, 126)],
    ['0x-prefixed id', '0x' + ev.id.slice(2), ev.pubkey, ev.sig],
    ['non-hex char in sig', ev.id, ev.pubkey, 'g' + ev.sig.slice(1)],
    ['non-ascii char in pubkey', ev.id, 'é' + ev.pubkey.slice(1), ev.sig],
    ['uppercase id', ev.id.toUpperCase(), ev.pubkey, ev.sig],
    ['undefined', undefined, undefined, undefined],
    ['null sig', ev.id, ev.pubkey, null],
    ['number id', 42, ev.pubkey, ev.sig],
    ['object pubkey', ev.id, { toString: () => ev.pubkey }, ev.sig],
    ['function sig', ev.id, ev.pubkey, () => ev.sig],
    ['zero pubkey (not on curve)', ev.id, '0'.repeat(64), ev.sig],
    ['all-f pubkey (exceeds field)', ev.id, 'f'.repeat(64), ev.sig],
    ['all-zero sig', ev.id, ev.pubkey, '0'.repeat(128)],
    ['all-f sig', ev.id, ev.pubkey, 'f'.repeat(128)],
  ];
  for (const v of [noble, pool] as SignatureVerifier[]) {
    const name = v === noble ? 'noble' : 'pool';
    for (const [what, id, pubkey, sig] of cases) {
      const verify = v.verify as (a: unknown, b: unknown, c: unknown) => Promise<boolean>;
      t.equal(await verify.call(v, id, pubkey, sig), false, `${name}: ${what}`);
    }
    const many = await (v.verifyMany as (items: unknown[]) => Promise<boolean[]>).call(v, [
      { id: ev.id, pubkey: ev.pubkey, sig: ev.sig },
      null,
      { id: 1, pubkey: [], sig: {} },
      { id: ev.id, pubkey: ev.pubkey, sig: ev.sig },
    ]);
    t.same(many, [true, false, false, true], `${name}: verifyMany keeps positions around malformed items`);
  }
  t.equal(nobleVerifySync(ev.id, ev.pubkey, ev.sig), true, 'control: the untouched event verifies');
});

t.test('a crashed worker fails its in-flight requests and is replaced', async (t) => {
  const p = new WorkerPoolVerifier({ workers: 2, maxBatch: 16 });
  t.teardown(() => p.close());
  await p.ready();
  const good = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'crash' }, generateSecretKey());
  const bad = flipHexDigit(good.sig, 5);
  const expected: boolean[] = [];
  const pending: Array<Promise<boolean>> = [];
  for (let i = 0; i < 2000; i++) {
    expected.push(i % 2 === 0);
    pending.push(p.verify(good.id, good.pubkey, i % 2 === 0 ? good.sig : bad));
  }
  t.ok(p.stats().inFlightItems > 0, 'requests are in flight before the crash');
  // Observe the outcomes before the crash so the rejections are never momentarily unhandled.
  const outcomes = Promise.allSettled(pending);
  await p.terminateWorker(0);
  const settled = await outcomes;
  let rejected = 0;
  let wrong = 0;
  settled.forEach((r, i) => {
    if (r.status === 'rejected') {
      rejected++;
      if (!(r.reason instanceof Error)) wrong++;
    } else if (r.value !== expected[i]) wrong++;
  });
  t.equal(wrong, 0, 'every request either got the right answer or an Error');
  t.ok(rejected > 0, `requests on the killed worker were failed (${rejected} of 2000)`);
  t.ok(rejected < 2000, 'requests on the surviving worker were answered');

  await p.ready();
  const s = p.stats();
  t.equal(s.restarts, 1, 'one worker was replaced');
  t.equal(s.readyWorkers, 2, 'pool is back to full strength');
  t.same(
    await p.verifyMany(Array.from({ length: 100 }, (_, i) => ({ id: good.id, pubkey: good.pubkey, sig: i % 2 ? bad : good.sig }))),
    Array.from({ length: 100 }, (_, i) => i % 2 === 0),
    'the recovered pool verifies correctly',
  );
});

t.test('a hung worker is abandoned after the batch timeout', async (t) => {
  // Announces readiness, then never answers.
  const hung = new URL(`data:text/javascript,${encodeURIComponent("import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ type: 'ready' }); parentPort.on('message', () => {});")}`);
  const p = new WorkerPoolVerifier({ workers: 1, batchTimeoutMs: 300, workerUrl: hung });
  t.teardown(() => p.close());
  const started = Date.now();
  await t.rejects(p.verify('a'.repeat(64), 'b'.repeat(64), 'c'.repeat(128)), /did not answer within 300 ms/);
  t.ok(Date.now() - started < 5_000, 'failed promptly');
  t.ok(p.stats().restarts >= 1, 'hung worker was replaced');
});

t.test('a deep but moving backlog is not mistaken for a hang', async (t) => {
  const p = new WorkerPoolVerifier({ workers: 1, batchTimeoutMs: 400 });
  t.teardown(() => p.close());
  await p.ready();
  const ev = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'backlog' }, generateSecretKey());
  // ~0.7 s of work even on an idle core, queued at once: longer than the timeout, but each batch answers in ~15 ms.
  const items = Array.from({ length: 3_000 }, () => ({ id: ev.id, pubkey: ev.pubkey, sig: ev.sig }));
  const started = Date.now();
  const results = await p.verifyMany(items);
  t.equal(results.filter(Boolean).length, items.length, `all verified (${Date.now() - started} ms)`);
  t.equal(p.stats().restarts, 0, 'no worker was replaced');
});

t.test('workers that cannot start fail requests instead of hanging', async (t) => {
  const broken = new URL(`data:text/javascript,${encodeURIComponent("throw new Error('boom at startup');")}`);
  const p = new WorkerPoolVerifier({ workers: 2, workerUrl: broken });
  t.teardown(() => p.close());
  const readiness = t.rejects(p.ready(), /boom at startup/, 'ready() reports the startup failure');
  await t.rejects(p.verify('a'.repeat(64), 'b'.repeat(64), 'c'.repeat(128)), /boom at startup/);
  await readiness;
});

t.test('close rejects queued work and later calls', async (t) => {
  const p = new WorkerPoolVerifier({ workers: 1 });
  const ev = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'close' }, generateSecretKey());
  const queued = t.rejects(p.verify(ev.id, ev.pubkey, ev.sig), /closed/);
  await p.close();
  await queued;
  await t.rejects(p.verify(ev.id, ev.pubkey, ev.sig), /closed/);
  await t.rejects(p.ready(), /closed/);
  t.equal(p.stats().readyWorkers, 0, 'no live workers after close');
});

t.test('createVerifier picks the library from the setting and the place from the worker count', async (t) => {
  const notBuilt = (): NativeLoad => ({ ok: false, reason: 'not built (run `make native`)', path: '/nowhere/secp256k1_verify.node' });
  const a = createVerifier(0, 'auto', notBuilt);
  const b = createVerifier(1, 'auto', notBuilt);
  const c = createVerifier(0, 'wasm');
  const d = createVerifier(1, 'noble');
  t.teardown(async () => {
    for (const x of [a, b, c, d]) await x.verifier.close();
  });
  t.ok(a.verifier instanceof NobleVerifier, 'auto without the addon, 0 workers → noble');
  t.match(a, { backend: 'noble', workers: 0, fallback: /not built/ }, 'the fallback says why');
  t.ok(b.verifier instanceof WorkerPoolVerifier, 'auto without the addon, 1 worker → pool');
  t.match(b, { backend: 'wasm', workers: 1, fallback: /not built/ });
  t.ok(c.verifier instanceof MainThreadVerifier && !(c.verifier instanceof NobleVerifier), 'wasm, 0 workers → WASM on the main thread');
  t.equal(c.backend, 'wasm');
  t.ok(d.verifier instanceof WorkerPoolVerifier && (d.verifier as WorkerPoolVerifier).backend === 'noble', 'noble, 1 worker → noble in a worker');
  t.throws(() => createVerifier(1, 'native', notBuilt), /verifier native: the libsecp256k1 addon not built/, 'an explicit native that cannot load is an error');
  const ev = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'factory' }, generateSecretKey());
  for (const [name, x] of [['a', a], ['b', b], ['c', c], ['d', d]] as const) {
    t.equal(await x.verifier.verify(ev.id, ev.pubkey, ev.sig), true, `${name} verifies a good event`);
    t.equal(await x.verifier.verify(ev.id, ev.pubkey, flipHexDigit(ev.sig, 9)), false, `${name} refuses a forged one`);
  }
  await (d.verifier as WorkerPoolVerifier).ready();
  t.same((d.verifier as WorkerPoolVerifier).stats().readyBackends, ['noble'], 'the workers loaded the backend they were asked for');
});

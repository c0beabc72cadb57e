// The native libsecp256k1 addon (relay/native/secp256k1, `make native`) against @noble/secp256k1: the BIP-340
// vectors, 10,000 random events valid and forged, malformed input, and the loader's self-check and fallback.
// Skips (with the reason) only when the addon file does not exist; a built addon that fails to load fails the test.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { nativeHexVerify } from '../../relay/src/crypto/backends.js';
import { createVerifier } from '../../relay/src/crypto/create-verifier.js';
import { MainThreadVerifier } from '../../relay/src/crypto/main-thread-verifier.js';
import { DEFAULT_NATIVE_PATH, checkNativeModule, loadNativeSecp256k1, type NativeSecp256k1 } from '../../relay/src/crypto/native-secp256k1.js';
import { NobleVerifier, nobleVerifySync } from '../../relay/src/crypto/noble-verifier.js';
import { WorkerPoolVerifier } from '../../relay/src/crypto/worker-pool-verifier.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** BIP-340 verify vectors 0-14 (the official CSV's rows with 32-byte messages): index, pubkey, msg, sig, result, comment. */
const VECTORS: Array<[number, string, string, string, boolean, string]> = [
  [0, 'f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9', '0000000000000000000000000000000000000000000000000000000000000000', 'e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca821525f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0', true, ''],
  [1, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '6896bd60eeae296db48a229ff71dfe071bde413e6d43f917dc8dcf8c78de33418906d11ac976abccb20b091292bff4ea897efcb639ea871cfa95f6de339e4b0a', true, ''],
  [2, 'dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8', '7e2d58d8b3bcdf1abadec7829054f90dda9805aab56c77333024b9d0a508b75c', '5831aaeed7b44bb74e5eab94ba9d4294c49bcf2a60728d8b4c200f50dd313c1bab745879a5ad954a72c45a91c3a51d3c7adea98d82f8481e0e1e03674a6f3fb7', true, ''],
  [3, '25d1dff95105f5253c4022f628a996ad3a0d95fbf21d468a1b33f8c160d8f517', 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', '7eb0509757e246f19449885651611cb965ecc1a187dd51b64fda1edc9637d5ec97582b9cb13db3933705b32ba982af5af25fd78881ebb32771fc5922efc66ea3', true, 'test fails if msg is reduced modulo p or n'],
  [4, 'd69c3509bb99e412e68b0fe8544e72837dfa30746d8be2aa65975f29d22dc7b9', '4df3c3f68fcc83b27e9d42c90431a72499f17875c81a599b566c9889b9696703', '00000000000000000000003b78ce563f89a0ed9414f5aa28ad0d96d6795f9c6376afb1548af603b3eb45c9f8207dee1060cb71c04e80f593060b07d28308d7f4', true, ''],
  [5, 'eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '6cff5c3ba86c69ea4b7376f31a9bcb4f74c1976089b2d9963da2e5543e17776969e89b4c5564d00349106b8497785dd7d1d713a8ae82b32fa79d5f7fc407d39b', false, 'public key not on the curve'],
  [6, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', 'fff97bd5755eeea420453a14355235d382f6472f8568a18b2f057a14602975563cc27944640ac607cd107ae10923d9ef7a73c643e166be5ebeafa34b1ac553e2', false, 'has_even_y(R) is false'],
  [7, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '1fa62e331edbc21c394792d2ab1100a7b432b013df3f6ff4f99fcb33e0e1515f28890b3edb6e7189b630448b515ce4f8622a954cfe545735aaea5134fccdb2bd', false, 'negated message'],
  [8, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '6cff5c3ba86c69ea4b7376f31a9bcb4f74c1976089b2d9963da2e5543e177769961764b3aa9b2ffcb6ef947b6887a226e8d7c93e00c5ed0c1834ff0d0c2e6da6', false, 'negated s value'],
  [9, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '0000000000000000000000000000000000000000000000000000000000000000123dda8328af9c23a94c1feecfd123ba4fb73476f0d594dcb65c6425bd186051', false, 'sG - eP is infinite. Test fails in single verification if has_even_y(inf) is defined as true and x(inf) as 0'],
  [10, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '00000000000000000000000000000000000000000000000000000000000000017615fbaf5ae28864013c099742deadb4dba87f11ac6754f93780d5a1837cf197', false, 'sG - eP is infinite. Test fails in single verification if has_even_y(inf) is defined as true and x(inf) as 1'],
  [11, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '4a298dacae57395a15d0795ddbfd1dcb564da82b0f269bc70a74f8220429ba1d69e89b4c5564d00349106b8497785dd7d1d713a8ae82b32fa79d5f7fc407d39b', false, 'sig[0:32] is not an X coordinate on the curve'],
  [12, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', 'fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f69e89b4c5564d00349106b8497785dd7d1d713a8ae82b32fa79d5f7fc407d39b', false, 'sig[0:32] is equal to field size'],
  [13, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '6cff5c3ba86c69ea4b7376f31a9bcb4f74c1976089b2d9963da2e5543e177769fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', false, 'sig[32:64] is equal to curve order'],
  [14, 'fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc30', '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89', '6cff5c3ba86c69ea4b7376f31a9bcb4f74c1976089b2d9963da2e5543e17776969e89b4c5564d00349106b8497785dd7d1d713a8ae82b32fa79d5f7fc407d39b', false, 'public key is not a valid X coordinate because it exceeds the field size'],
];

const P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const TWO_256 = 1n << 256n;

const hex32 = (v: bigint) => v.toString(16).padStart(64, '0');
const toBytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
/** Deterministic PRNG (mulberry32) so a failure can be reproduced from the printed seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
function randomBig(rand: () => number, below: bigint): bigint {
  let v = 0n;
  for (let i = 0; i < 9; i++) v = (v << 32n) | BigInt(Math.floor(rand() * 4294967296));
  return v % below;
}
function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}
function flipBit(hex: string, bit: number): string {
  const bytes = toBytes(hex);
  bytes[bit >> 3]! ^= 1 << (bit & 7);
  return Buffer.from(bytes).toString('hex');
}
/** An x below p with no curve point (x^3 + 7 not a square mod p), or, every other call, an x >= p. */
function nonCurveX(rand: () => number, i: number): string {
  if (i % 2 === 1) return hex32(P + randomBig(rand, TWO_256 - P));
  for (;;) {
    const x = randomBig(rand, P);
    if (modPow((x * x * x + 7n) % P, (P - 1n) / 2n, P) === P - 1n) return hex32(x);
  }
}

const built = existsSync(DEFAULT_NATIVE_PATH);
if (!built) {
  t.plan(0, `native libsecp256k1 addon not built (${path.relative(repoRoot, DEFAULT_NATIVE_PATH)} missing): run \`make native\` (needs libsecp256k1-dev)`);
} else {
  // The raw addon, bypassing the loader's self-check, so a broken build shows up as specific wrong answers below.
  const raw = createRequire(import.meta.url)(DEFAULT_NATIVE_PATH) as NativeSecp256k1;
  const loaded = loadNativeSecp256k1();

  t.test('the built addon loads and passes its self-check', async (t) => {
    t.ok(loaded.ok, loaded.ok ? 'loaded' : `load failed: ${loaded.reason}`);
  });

  // Built over the raw addon, so its answers are checked even when the self-check rejects it. The pool's workers go
  // through the loader, so with a rejected addon they cannot start: the pool's checks then only run when it loaded.
  const main = new MainThreadVerifier('native', nativeHexVerify(raw));
  const pool = new WorkerPoolVerifier({ workers: 2, backend: 'native' });
  const noble = new NobleVerifier();
  t.teardown(async () => {
    await main.close();
    await pool.close();
    await noble.close();
  });
  const poolVerify = (id: string, pubkey: string, sig: string) => (loaded.ok ? pool.verify(id, pubkey, sig) : Promise.resolve(null));
  const poolVerifyMany = (items: Array<{ id: string; pubkey: string; sig: string; expected: boolean }>) =>
    loaded.ok ? pool.verifyMany(items) : Promise.resolve(items.map((it) => it.expected));

  t.test('the embedded vectors are the fixture CSV rows 0-14', async (t) => {
    const rows = readFileSync(path.join(repoRoot, 'test/fixtures/bip340-test-vectors.csv'), 'utf8').trim().split(/\r?\n/).slice(1, 16);
    t.same(
      rows.map((r) => {
        const c = r.split(',');
        return [Number(c[0]), c[2]!.toLowerCase(), c[4]!.toLowerCase(), c[5]!.toLowerCase(), c[6] === 'TRUE'];
      }),
      VECTORS.map((v) => v.slice(0, 5)),
    );
  });

  t.test('BIP-340 vectors: addon, native verifiers and noble give the expected answer', async (t) => {
    if (loaded.ok) {
      await pool.ready();
      t.same(pool.stats().readyBackends, ['native'], 'the pool workers loaded the native backend');
    }
    let trues = 0;
    for (const [index, pubkey, msg, sig, expected, comment] of VECTORS) {
      const label = `vector ${index} expects ${expected}${comment ? ` (${comment})` : ''}`;
      t.equal(raw.verify(toBytes(msg), toBytes(pubkey), toBytes(sig)), expected, `addon: ${label}`);
      t.equal(await main.verify(msg, pubkey, sig), expected, `native main thread: ${label}`);
      if (loaded.ok) t.equal(await poolVerify(msg, pubkey, sig), expected, `native pool: ${label}`);
      t.equal(nobleVerifySync(msg, pubkey, sig), expected, `noble: ${label}`);
      if (expected) trues++;
    }
    t.equal(trues, 5, '5 valid and 10 invalid vectors');
  });

  t.test('10,000 random events, valid and forged: native agrees with noble', async (t) => {
    const seed = Number(process.env.NATIVE_TEST_SEED ?? Date.now() % 1_000_000);
    t.comment(`seed ${seed} (NATIVE_TEST_SEED=${seed} reproduces the forgeries)`);
    const rand = rng(seed);
    const keys = Array.from({ length: 40 }, () => generateSecretKey());
    const pubkeys = keys.map((k) => getPublicKey(k));
    t.equal(new Set(pubkeys).size, keys.length, 'distinct signing keys');
    const kinds = ['sig bit flipped', 'id bit flipped', 'wrong pubkey', 'non-curve pubkey', 's >= n', 'r >= p'] as const;
    const items: Array<{ id: string; pubkey: string; sig: string; expected: boolean; what: string }> = [];
    const perKind = new Map<string, number>();
    for (let e = 0; items.length < 10_000; e++) {
      const ev = finalizeEvent({ kind: 1, created_at: 1_700_000_000 + e, tags: [['t', `n${e}`]], content: `native ${seed} #${e}` }, keys[e % keys.length]!);
      items.push({ id: ev.id, pubkey: ev.pubkey, sig: ev.sig, expected: true, what: `event ${e}` });
      // Three forgeries per valid event, cycling through the six kinds.
      for (let f = 0; f < 3; f++) {
        const kind = kinds[(3 * e + f) % kinds.length]!;
        perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
        let { id, pubkey, sig } = ev;
        if (kind === 'sig bit flipped') sig = flipBit(sig, Math.floor(rand() * 512));
        else if (kind === 'id bit flipped') id = flipBit(id, Math.floor(rand() * 256));
        // Another signer's key (the 40 keys are distinct, so the offset 1..39 never lands on the signer's own).
        else if (kind === 'wrong pubkey') pubkey = pubkeys[(e + 1 + Math.floor(rand() * (keys.length - 1))) % keys.length]!;
        else if (kind === 'non-curve pubkey') pubkey = nonCurveX(rand, e);
        else if (kind === 's >= n') sig = sig.slice(0, 64) + hex32(N + randomBig(rand, TWO_256 - N));
        else sig = hex32(P + randomBig(rand, TWO_256 - P)) + sig.slice(64);
        items.push({ id, pubkey, sig, expected: false, what: `event ${e}: ${kind}` });
      }
    }
    t.equal(items.length, 10_000);
    t.ok([...perKind.values()].every((n) => n > 1_000), `every forgery kind is well covered: ${JSON.stringify(Object.fromEntries(perKind))}`);

    const fromNoble = await noble.verifyMany(items);
    const fromMain = await main.verifyMany(items);
    const fromPool = await poolVerifyMany(items);
    let mismatches = 0;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const fromAddon = raw.verify(toBytes(it.id), toBytes(it.pubkey), toBytes(it.sig));
      if (fromAddon !== it.expected || fromMain[i] !== it.expected || fromPool[i] !== it.expected || fromNoble[i] !== it.expected) {
        if (++mismatches <= 20) t.fail(`${it.what}: expected ${it.expected}, addon ${fromAddon}, main ${fromMain[i]}, pool ${fromPool[i]}, noble ${fromNoble[i]}`);
      }
    }
    t.equal(mismatches, 0, 'addon, native main thread, native pool and noble all give the expected answer on 10,000 items');
    t.equal(fromMain.filter(Boolean).length, 2_500, 'exactly the 2,500 untouched events verify');
  });

  t.test('malformed input: the verifiers answer false, the addon refuses wrong sizes and types', async (t) => {
    const ev = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'x' }, generateSecretKey());
    const cases: Array<[string, unknown, unknown, unknown]> = [
      ['short id', ev.id.slice(2), ev.pubkey, ev.sig],
      ['long sig', ev.id, ev.pubkey, ev.sig + '00'],
      ['uppercase pubkey', ev.id, ev.pubkey.toUpperCase(), ev.sig],
      ['non-hex char', ev.id, ev.pubkey, 'g' + ev.sig.slice(1)],
      ['null', null, null, null],
      ['zero pubkey', ev.id, '0'.repeat(64), ev.sig],
      ['all-f sig', ev.id, ev.pubkey, 'f'.repeat(128)],
    ];
    for (const [name, v] of loaded.ok ? ([['main', main], ['pool', pool]] as const) : ([['main', main]] as const)) {
      const verify = v.verify as (a: unknown, b: unknown, c: unknown) => Promise<boolean>;
      for (const [what, id, pubkey, sig] of cases) t.equal(await verify.call(v, id, pubkey, sig), false, `${name}: ${what}`);
      t.equal(await v.verify(ev.id, ev.pubkey, ev.sig), true, `${name}: control event verifies`);
    }
    const m = toBytes(ev.id);
    const p = toBytes(ev.pubkey);
    const s = toBytes(ev.sig);
    const call = raw.verify as (...args: unknown[]) => boolean;
    t.equal(call(m, p, s), true, 'addon: control');
    t.equal(call(Buffer.from(m), Buffer.from(p), Buffer.from(s)), true, 'addon: Buffers are Uint8Arrays');
    const wrong: Array<[string, unknown[]]> = [
      ['31-byte msg', [m.subarray(0, 31), p, s]],
      ['33-byte pubkey', [m, new Uint8Array(33), s]],
      ['63-byte sig', [m, p, s.subarray(1)]],
      ['strings', [ev.id, ev.pubkey, ev.sig]],
      ['a Uint16Array sig', [m, p, new Uint16Array(32)]],
      ['an ArrayBuffer msg', [m.buffer, p, s]],
      ['two arguments', [m, p]],
      ['args swapped (sig first)', [s, p, m]],
    ];
    for (const [what, args] of wrong) t.throws(() => call(...args), TypeError, `addon: ${what} throws TypeError`);
  });

  t.test('the self-check rejects wrong modules; the loader reports a missing file', async (t) => {
    t.equal(checkNativeModule(raw), null, 'the real addon passes');
    t.match(checkNativeModule({ verify: () => true }), /forgery .* verified/, 'always-true');
    t.match(checkNativeModule({ verify: () => false }), /vector 0 did not verify/, 'always-false');
    t.match(checkNativeModule({ verify: (a: Uint8Array, b: Uint8Array, c: Uint8Array) => raw.verify(b, a, c) }), /vector 0 did not verify/, 'msg and pubkey swapped');
    t.match(checkNativeModule({ verify: (a: Uint8Array, b: Uint8Array, c: Uint8Array) => a.length === 31 || raw.verify(a, b, c) }), /31-byte message was accepted/, 'no length check');
    t.match(checkNativeModule({}), /no verify function/);
    const missing = loadNativeSecp256k1('/nonexistent/secp256k1_verify.node');
    t.match(missing, { ok: false, reason: /not built/ });
    if (!loaded.ok) return;
    const auto = createVerifier(1, 'auto');
    const onMain = createVerifier(0, 'native');
    t.teardown(async () => {
      await auto.verifier.close();
      await onMain.verifier.close();
    });
    t.match(auto, { backend: 'native', workers: 1 }, 'auto picks native when it is built');
    t.notOk('fallback' in auto, 'no fallback reported');
    t.ok(onMain.verifier instanceof MainThreadVerifier && onMain.workers === 0, 'native with 0 workers runs on the main thread');
  });
}

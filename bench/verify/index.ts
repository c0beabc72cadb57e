// Signature verification throughput in one run: native libsecp256k1 (when `make native` built it) vs tiny-secp256k1
// (WASM) vs @noble/secp256k1, each on the main thread and in worker pools, per core, with the load average printed
// before and after (the figures are only as good as the machine is quiet).
//
//   npx tsx bench/verify/index.ts [--events 10000] [--rounds 3] [--workers N (largest pool; default cores)]
import { cpus, loadavg } from 'node:os';
import { intOption, parseArgs } from '../lib/args.js';
import { generateSignedEventsParallel } from '../lib/events.js';
import { printTable } from '../lib/table.js';
import { measureMainThread, measureNoble, measurePool, nativeAvailable, type VerifyThroughput } from '../lib/verify-throughput.js';

const { values } = parseArgs({
  options: { events: { type: 'string' }, rounds: { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean' } },
});
if (values.help) {
  console.log('usage: npx tsx bench/verify/index.ts [--events 10000] [--rounds 3] [--workers N]');
  process.exit(0);
}
const cores = cpus().length;
const events = intOption(values, 'events', 10_000);
const rounds = intOption(values, 'rounds', 3);
const maxWorkers = intOption(values, 'workers', cores);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  console.log(`verify bench: ${events} events, best of ${rounds} rounds, ${cores} cores (${cpus()[0]?.model ?? '?'}), load average ${load()}`);
  const signed = await generateSignedEventsParallel(events);
  const items = signed.map((e) => ({ id: e.id, pubkey: e.pubkey, sig: e.sig }));
  // noble is ~10-100x slower; a smaller sample keeps its rounds to a few seconds.
  const nobleItems = items.slice(0, Math.min(items.length, 1_000));
  const native = nativeAvailable();
  if (!native.ok) console.log(`native libsecp256k1 addon ${native.reason}: its rows are left out`);

  const results: VerifyThroughput[] = [await measureNoble(nobleItems, rounds)];
  const pools = [...new Set([1, maxWorkers])];
  for (const backend of native.ok ? (['wasm', 'native'] as const) : (['wasm'] as const)) {
    results.push(await measureMainThread(backend, items, rounds));
    for (const w of pools) results.push(await measurePool(items, w, cores, rounds, backend));
  }
  const noble = results[0]!;
  const wasmMain = results[1]!;
  printTable(
    `Signature verification, best of ${rounds} rounds (baselines: @noble/secp256k1 and tiny-secp256k1 on the main thread, same run)`,
    results.map((r) => ({
      verifier: r.name,
      threads: r.threads,
      items: r.items,
      'verif/s': Math.round(r.perSecond),
      'verif/s/core': Math.round(r.perSecondPerCore),
      'vs noble/core': `${(r.perSecondPerCore / noble.perSecondPerCore).toFixed(1)}x`,
      'vs wasm/core': `${(r.perSecondPerCore / wasmMain.perSecondPerCore).toFixed(1)}x`,
      'main-thread µs/verif': Number(r.mainThreadUsPerItem.toFixed(1)),
      'lone verify p50 µs': Math.round(r.loneP50Us),
      'worst round verif/s': Math.round(r.worstPerSecond),
      failed: r.failures,
    })),
  );
  console.log(`\nload average after: ${load()}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// A peer flooding at 10x its rate limit must not hurt honest clients: their publish→OK p99 while the flood runs
// stays within the adversary suite's bound of the p99 without it (the 2x goal is bench/byzantine's). The flooder (its own process) floods in 0.5 s bursts separated by 0.5 s
// pauses and honest samples are sorted by when they were sent, so both sets share the same background load (the
// suite runs two files in parallel on small machines). Rate-limit hits carry no penalty here so the flooder is
// throttled, not banned, for the whole measurement.
import t from 'tap';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { NostrLink, craft, startMaliciousNode, type SignedEvent } from '../helpers/malicious-node.js';
import { assertHonestP99 } from '../adversary/helpers/honest-latency.js';

const PEER_LIMIT_PER_SECOND = 30;
const FLOOD_PER_SECOND = PEER_LIMIT_PER_SECOND * 10;
const PHASE_MS = 500;
const CYCLES = 16;
// The flooder is a compromised peer: allow-listed (a random key answering AUTH would be a client).
const flooderKey = generateSecretKey();

let relay: RelayProcess;
t.before(async () => {
  relay = await startRelay({ args: ['--rate-limits', `peer:*:${PEER_LIMIT_PER_SECOND}/1s`, '--reputation-penalties', 'rate-limit=0', '--peer-node-ids', getPublicKey(flooderKey)] });
});
t.teardown(async () => {
  await relay.stop();
  await relay.cleanup();
});

interface Sample {
  sentAt: number;
  ms: number;
}

/** Events for `clients` honest clients, signed up front (signing is slow on a busy machine). */
function honestPlans(clients: number, perSecond: number, seconds: number): SignedEvent[][] {
  return Array.from({ length: clients }, () => {
    const key = generateSecretKey();
    return Array.from({ length: perSecond * seconds }, () => craft.valid(key));
  });
}

/** Honest clients each publish their pre-signed events one at a time at `perSecond`; returns publish→OK samples. */
async function honestSamples(url: string, plans: SignedEvent[][], perSecond: number): Promise<Sample[]> {
  const links = await Promise.all(plans.map(() => NostrLink.connect(url, { authenticate: false })));
  const samples: Sample[] = [];
  await Promise.all(
    links.map(async (link, i) => {
      const started = performance.now();
      for (const [n, event] of plans[i]!.entries()) {
        const due = started + (n * 1000) / perSecond;
        if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
        const sentAt = Date.now();
        const sent = performance.now();
        const answer = await link.publish(event);
        if (!answer.ok) throw new Error(`honest event refused: ${answer.message}`);
        samples.push({ sentAt, ms: performance.now() - sent });
      }
    }),
  );
  await Promise.all(links.map((l) => l.close()));
  return samples;
}

function p99(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

t.test(`honest p99 during a ${FLOOD_PER_SECOND}/s flood from one peer (limit ${PEER_LIMIT_PER_SECOND}/s) stays bounded`, async (t) => {
  await honestSamples(relay.url, honestPlans(2, 20, 1), 20); // warm-up: JIT, pools, verifier workers
  const plans = honestPlans(4, 20, Math.ceil((2 * CYCLES * PHASE_MS) / 1000) + 1);

  // Niced: a real attacker's CPU is on another machine; its pre-signed flood still runs at the planned rate (checked).
  const flooder = startMaliciousNode(
    relay.url,
    { flood: { perSecond: FLOOD_PER_SECOND, seconds: CYCLES * (PHASE_MS / 1000), onMs: PHASE_MS, offMs: PHASE_MS } },
    { nice: 10, secretKey: flooderKey },
  );
  // The flooder signs its events before it connects, which takes a while on a busy machine.
  await relay.waitForLog(/^peer authenticated$/, 60_000);
  const samples = await honestSamples(relay.url, plans, 20);
  const report = await flooder.report;
  t.equal(report.authenticated, true, 'the flooder is an authenticated peer');
  const start = report.floodStartedAt!;

  // Samples sent within 75 ms of a phase change are left out: they straddle both conditions.
  const flooded: number[] = [];
  const normal: number[] = [];
  for (const s of samples) {
    const offset = s.sentAt - start;
    if (offset < 0 || offset >= 2 * CYCLES * PHASE_MS) continue;
    const inPhase = offset % PHASE_MS;
    if (inPhase < 75 || inPhase > PHASE_MS - 75) continue;
    (Math.floor(offset / PHASE_MS) % 2 === 0 ? flooded : normal).push(s.ms);
  }
  const normalP99 = p99(normal);
  const floodedP99 = p99(flooded);
  t.comment(`publish→OK p99: normal ${normalP99.toFixed(1)} ms (${normal.length} samples), during flood ${floodedP99.toFixed(1)} ms (${flooded.length} samples)`);
  t.comment(`flood: ${report.sent} sent, answers ${JSON.stringify(report.answers)}`);
  t.ok(normal.length >= 100 && flooded.length >= 100, 'enough samples in both conditions');
  const floodWallMs = report.floodEndedAt! - start;
  t.ok(floodWallMs <= 2 * CYCLES * PHASE_MS * 2, `the flood ran at its planned rate (${report.sent} events in ${floodWallMs} ms)`);
  t.ok((report.answers['rate-limited'] ?? 0) >= report.sent * 0.8, 'most of the flood was refused with rate-limited:');
  const floodSeconds = (2 * CYCLES * PHASE_MS) / 1000;
  t.ok((report.answers.true ?? 0) <= PEER_LIMIT_PER_SECOND * (floodSeconds + 1), `throttled to the limit (${report.answers.true} accepted in ${floodSeconds} s)`);
  // The 2x goal is a performance target (bench/byzantine prints it); a test holds the bound shared by the adversary
  // suite, which a 2-core machine running other suites beside it keeps (a fresh-clone run at load 5 saw 3.4x).
  assertHonestP99(t, normal, flooded, `a ${FLOOD_PER_SECOND}/s peer flood`);
});

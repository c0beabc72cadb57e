import { generateSecretKey } from 'nostr-tools/pure';
import { NostrLink, craft } from '../../test/helpers/malicious-node.js';

/** Honest clients publishing one event at a time; publish→OK latencies in ms, each with its send time. */
/** Without `onRefused`, a refused honest event ends the run (it is a failure of the bench's premise). */
export async function honest(url: string, clients: number, perSecond: number, secs: number, onRefused?: (message: string) => void): Promise<Array<{ at: number; ms: number }>> {
  const links = await Promise.all(Array.from({ length: clients }, () => NostrLink.connect(url, { authenticate: false })));
  const plans = links.map(() => {
    const key = generateSecretKey();
    return Array.from({ length: perSecond * secs }, () => craft.valid(key));
  });
  const samples: Array<{ at: number; ms: number }> = [];
  await Promise.all(
    links.map(async (link, i) => {
      const started = performance.now();
      for (const [n, event] of plans[i]!.entries()) {
        const due = started + (n * 1000) / perSecond;
        if (due > performance.now()) await new Promise((res) => setTimeout(res, due - performance.now()));
        const sent = performance.now();
        const answer = await link.publish(event);
        if (!answer.ok) {
          if (!onRefused) throw new Error(`honest event refused: ${answer.message}`);
          onRefused(answer.message);
          continue;
        }
        samples.push({ at: Date.now(), ms: performance.now() - sent });
      }
    }),
  );
  await Promise.all(links.map((l) => l.close()));
  return samples;
}


/**
 * One honest reader: `REQ {kinds:[1], limit:20}` every `everyMs` on one connection (well inside the per-connection
 * REQ rate), each closed after its EOSE. REQ→EOSE latencies in ms; a CLOSED instead of EOSE is passed to `onRefused`.
 */
export async function reader(url: string, secs: number, everyMs = 100, onRefused?: (message: string) => void): Promise<number[]> {
  const link = await NostrLink.connect(url, { authenticate: false });
  const out: number[] = [];
  const deadline = performance.now() + secs * 1000;
  for (let n = 0; performance.now() < deadline && link.open; n++) {
    const started = performance.now();
    const sub = `honest-${n}`;
    link.send(['REQ', sub, { kinds: [1], limit: 20 }]);
    const end = await link.next((f) => (f[0] === 'EOSE' || f[0] === 'CLOSED') && f[1] === sub, 30_000).catch(() => ['TIMEOUT', sub]);
    if (end[0] === 'EOSE') out.push(performance.now() - started);
    else onRefused?.(`${String(end[0])} ${String(end[2] ?? '')}`.split(':', 1)[0]!);
    link.send(['CLOSE', sub]);
    const wait = started + everyMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await link.close();
  return out;
}

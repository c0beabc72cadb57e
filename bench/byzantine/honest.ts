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


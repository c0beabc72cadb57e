// An honest client's publish→OK latency, measured without and then during an attack on the same relay in the same
// test. The goal (p99 within 2x of the no-attack run) is a performance target: bench/byzantine prints that
// ratio per attack. Here the bound is what a test can hold on a loaded 2-core machine with the attacker beside it:
// within 10x the no-attack p99, and never below a 1 s floor. It still fails when an attack stalls honest writes.
import type { Test } from 'tap';
import { RawClient, signed } from '../../helpers/ws-client.js';

export const P99_FACTOR = 10;
export const P99_FLOOR_MS = 1000;

/** `n` fresh events, one at a time on one connection: each publish→OK in ms. */
export async function honestPublishes(url: string, n = 40): Promise<number[]> {
  const c = await RawClient.connect(url);
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const ev = signed({ content: `honest ${i} ${Math.random()}` });
      const started = performance.now();
      const ok = await c.publish(ev, 30_000);
      if (!ok.ok) throw new Error(`honest publish refused: ${ok.message}`);
      out.push(performance.now() - started);
    }
  } finally {
    await c.close();
  }
  return out;
}

export function p99(ms: number[]): number {
  const sorted = [...ms].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

/** Asserts the honest p99 during the attack against the no-attack p99 of the same relay. */
export function assertHonestP99(t: Test, baseline: number[], during: number[], attack: string): void {
  const base = p99(baseline);
  const now = p99(during);
  const bound = Math.max(P99_FACTOR * base, P99_FLOOR_MS);
  t.ok(now <= bound, `honest publish→OK p99 ${now.toFixed(1)} ms during ${attack} vs ${base.toFixed(1)} ms without (${(now / base).toFixed(1)}x; bound ${bound.toFixed(0)} ms)`);
}

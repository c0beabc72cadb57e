/**
 * loss (alias drop): drop ws messages or tcp chunks with a probability, or
 * (mode: connection) reset whole tcp connections at accept. `correlation`
 * makes losses come in bursts with a two-state Gilbert-Elliott chain whose
 * long-run loss rate is still `probability`.
 */
import { registerFault } from './registry.js';
import type { Rng } from '../rng.js';

/** P(loss | last lost) = p + c(1-p), P(loss | last kept) = p(1-c): stationary rate p. */
function burstyLoss(rng: Rng, attrs: { probability: number; correlation: number }): () => boolean {
  let lost = rng.next() < attrs.probability;
  let first = true;
  return () => {
    const p = attrs.probability;
    const c = attrs.correlation;
    if (first) {
      first = false;
      return lost;
    }
    const threshold = lost ? p + c * (1 - p) : p * (1 - c);
    lost = rng.next() < threshold;
    return lost;
  };
}

registerFault(
  {
    type: 'loss',
    doc: 'Drop each message (ws) or chunk (tcp) with `probability` (bursty with `correlation`); mode "connection" resets that share of new tcp connections instead.',
    protocols: ['tcp', 'ws'],
    attributes: {
      probability: { type: 'number', default: 1, min: 0, max: 1, doc: 'share dropped, 0..1' },
      correlation: { type: 'number', default: 0, min: 0, max: 1, doc: 'burstiness 0..1 (Gilbert-Elliott)' },
      mode: { type: 'string', default: 'message', oneOf: ['message', 'chunk', 'connection'], doc: 'what is dropped ("message" and "chunk" are the same)' },
    },
    accept(ctx) {
      if (ctx.attrs.mode !== 'connection') return undefined;
      return ctx.rng.next() < (ctx.attrs.probability as number) ? { kind: 'reset' } : undefined;
    },
    stage(ctx) {
      if (ctx.attrs.mode === 'connection') return undefined;
      // The chain keeps its state across an update; the new rates apply from the next decision.
      const lose = burstyLoss(ctx.rng, ctx.attrs as unknown as { probability: number; correlation: number });
      return {
        chunk(c) {
          if (lose()) {
            ctx.fired();
            ctx.drop(c);
          } else ctx.emit(c);
        },
        close() {},
      };
    },
  },
  'drop',
);

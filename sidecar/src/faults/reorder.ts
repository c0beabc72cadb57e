/**
 * reorder: hold a ws message (with `probability`) until `gap` later messages
 * have passed, or `max_delay` ms, whichever comes first.
 */
import { registerFault } from './registry.js';
import type { Chunk } from './contract.js';

interface Held {
  chunk: Chunk;
  left: number;
  timer: NodeJS.Timeout;
}

registerFault({
  type: 'reorder',
  doc: 'Hold a ws message with `probability` until `gap` later messages passed (or `max_delay` ms), so it arrives out of order.',
  protocols: ['ws'],
  attributes: {
    probability: { type: 'number', default: 0.5, min: 0, max: 1, doc: 'share of messages held back' },
    gap: { type: 'number', default: 1, min: 1, doc: 'messages that overtake a held one' },
    max_delay: { type: 'number', default: 100, min: 0, unit: 'duration', doc: 'ms a message is held at most' },
  },
  stage(ctx) {
    const held: Held[] = [];
    const release = (h: Held) => {
      const i = held.indexOf(h);
      if (i < 0) return;
      held.splice(i, 1);
      clearTimeout(h.timer);
      ctx.emit(h.chunk);
    };
    return {
      chunk(c) {
        if (!c.control && ctx.rng.next() < (ctx.attrs.probability as number)) {
          ctx.fired();
          const h: Held = { chunk: c, left: ctx.attrs.gap as number, timer: setTimeout(() => release(h), ctx.attrs.max_delay as number) };
          held.push(h);
          return;
        }
        ctx.emit(c);
        for (const h of [...held]) if (--h.left <= 0) release(h);
      },
      end() {
        for (const h of [...held]) release(h);
        ctx.end();
      },
      close(flush) {
        for (const h of [...held]) {
          if (flush) release(h);
          else clearTimeout(h.timer);
        }
        held.length = 0;
      },
    };
  },
});

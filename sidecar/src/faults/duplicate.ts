/** duplicate: send a ws message `copies` extra times with `probability`. */
import { registerFault } from './registry.js';

registerFault({
  type: 'duplicate',
  doc: 'Send each ws message `copies` more times with `probability`.',
  protocols: ['ws'],
  attributes: {
    probability: { type: 'number', default: 1, min: 0, max: 1, doc: 'share of messages duplicated' },
    copies: { type: 'number', default: 1, min: 1, max: 100, doc: 'extra copies' },
  },
  stage(ctx) {
    return {
      chunk(c) {
        ctx.emit(c);
        if (c.control) return;
        if (ctx.rng.next() < (ctx.attrs.probability as number)) {
          ctx.fired();
          for (let i = 0; i < (ctx.attrs.copies as number); i++) ctx.emit(c);
        }
      },
      close() {},
    };
  },
});

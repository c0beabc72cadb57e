/** blackhole: silently swallow all data in this direction; the connection stays open until a side closes it. */
import { registerFault } from './registry.js';

registerFault({
  type: 'blackhole',
  doc: 'Swallow all data in this direction; the connection stays open (the peer just hears nothing).',
  protocols: ['tcp', 'ws'],
  attributes: {},
  stage(ctx) {
    return {
      chunk(c) {
        ctx.fired();
        ctx.drop(c);
      },
      // The FIN is not data: a client that goes away closes the connection instead of leaving it half-open forever.
      end() {
        ctx.end();
      },
      close() {},
    };
  },
});

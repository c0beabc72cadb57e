/** blackhole: silently swallow everything in this direction; the connection stays open. */
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
      end() {},
      close() {},
    };
  },
});

/**
 * reset_peer: a real TCP RST (socket.resetAndDestroy) after `timeout` ms.
 * Unlike Toxiproxy, it only fires on connections whose toxicity roll passed.
 */
import { registerFault } from './registry.js';

registerFault({
  type: 'reset_peer',
  doc: 'Reset the connection with a TCP RST `timeout` ms after the fault applies to it (0 = at once).',
  protocols: ['tcp', 'ws'],
  attributes: {
    timeout: { type: 'number', default: 0, min: 0, unit: 'duration', doc: 'ms before the RST' },
  },
  stage(ctx) {
    const timer = setTimeout(() => {
      ctx.fired();
      ctx.conn.reset('reset_peer fault');
    }, ctx.attrs.timeout as number);
    return {
      chunk: ctx.emit,
      close() {
        clearTimeout(timer);
      },
    };
  },
});

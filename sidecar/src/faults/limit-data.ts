/** limit_data: let `bytes` bytes through on this connection and direction, then close it. */
import { registerFault } from './registry.js';

registerFault({
  type: 'limit_data',
  doc: 'Close the connection once `bytes` bytes have passed in this direction (per connection).',
  protocols: ['tcp', 'ws'],
  attributes: {
    bytes: { type: 'number', default: 0, min: 0, doc: 'bytes allowed before the close' },
  },
  stage(ctx) {
    let passed = 0;
    let done = false;
    const cut = () => {
      done = true;
      ctx.fired();
      ctx.conn.close('limit_data fault');
    };
    if ((ctx.attrs.bytes as number) === 0) queueMicrotask(cut);
    return {
      chunk(c) {
        if (done) return ctx.drop(c);
        const limit = ctx.attrs.bytes as number; // an update keeps the count and moves the limit
        const room = limit - passed;
        if (c.data.length < room) {
          passed += c.data.length;
          return ctx.emit(c);
        }
        // A ws message can't be cut in half; it is dropped if it doesn't fit.
        if (ctx.protocol === 'tcp') ctx.emit({ data: c.data.subarray(0, room), binary: c.binary });
        else if (c.data.length === room) ctx.emit(c);
        else ctx.drop(c);
        passed = limit;
        cut();
      },
      close() {
        done = true;
      },
    };
  },
});

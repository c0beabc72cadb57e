/** timeout: swallow all data, then close the connection after `timeout` ms (0 = never). */
import { registerFault } from './registry.js';

registerFault({
  type: 'timeout',
  doc: 'Drop all data in this direction and close the connection after `timeout` ms (0 = keep it open, silent, forever).',
  protocols: ['tcp', 'ws'],
  attributes: {
    timeout: { type: 'number', default: 0, min: 0, unit: 'duration', doc: 'ms before the connection is closed' },
  },
  stage(ctx) {
    const ms = ctx.attrs.timeout as number;
    let endHeld = false;
    const timer = ms > 0 ? setTimeout(() => { ctx.fired(); ctx.conn.close('timeout fault'); }, ms) : null;
    return {
      chunk(c) {
        ctx.fired();
        ctx.drop(c);
      },
      end() {
        // timeout 0 never closes by itself: a client that leaves must close the connection, not sit in CLOSE_WAIT.
        if (ms === 0) ctx.end();
        else endHeld = true;
      },
      close(flush) {
        if (timer) clearTimeout(timer);
        if (flush && endHeld) ctx.end();
      },
    };
  },
});

/**
 * reset_peer, as Toxiproxy's: once data arrives in this direction, wait `timeout` ms, then reset the connection
 * with a TCP RST (linger 0) on both sides, the client and the upstream. The data that armed it is not delivered
 * (Toxiproxy consumes it). `timeout: 0` resets at once, idle or not, like Toxiproxy 2.12. Unlike Toxiproxy it only
 * acts on connections whose toxicity roll passed.
 */
import { registerFault } from './registry.js';

registerFault({
  type: 'reset_peer',
  doc: 'Reset the connection (TCP RST to client and upstream) `timeout` ms after data arrives in this direction; 0 = at once.',
  protocols: ['tcp', 'ws'],
  attributes: {
    timeout: { type: 'number', default: 0, min: 0, unit: 'duration', doc: 'ms after the first data before the RST (0 = at once)' },
  },
  stage(ctx) {
    let timer: NodeJS.Timeout | null = null;
    let done = false;
    const fire = () => {
      timer = null;
      if (done) return;
      done = true;
      ctx.fired();
      ctx.conn.reset('reset_peer fault');
    };
    // After the stage is linked in: resetting while the link is still setting the connection up would race it.
    if ((ctx.attrs.timeout as number) === 0) queueMicrotask(fire);
    return {
      chunk(c) {
        ctx.drop(c);
        if (timer || done) return;
        const ms = ctx.attrs.timeout as number;
        if (ms === 0) fire();
        else timer = setTimeout(fire, ms);
      },
      close() {
        done = true;
        if (timer) clearTimeout(timer);
        timer = null;
      },
    };
  },
});

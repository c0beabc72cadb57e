/** bandwidth: cap throughput at `rate` KB/s by spacing out slices of the data. */
import { registerFault } from './registry.js';
import { TimedQueue } from '../pipeline/timed-queue.js';

registerFault({
  type: 'bandwidth',
  doc: 'Limit throughput to `rate` KB/s (also "1mbps"-style strings). tcp chunks are sliced into 100 ms worth of bytes; ws messages stay whole.',
  protocols: ['tcp', 'ws'],
  attributes: {
    rate: { type: 'number', default: 0, min: 0, unit: 'rate', doc: 'KB/s; 0 = no data passes' },
  },
  stage(ctx) {
    const rate = ctx.attrs.rate as number; // KB/s == bytes per ms
    const q = new TimedQueue({ emit: ctx.emit, end: ctx.end });
    const slice = ctx.protocol === 'tcp' ? Math.max(1, Math.floor(rate * 100)) : Infinity;
    return {
      chunk(c) {
        if (rate <= 0) {
          ctx.drop(c);
          return;
        }
        ctx.fired();
        for (let off = 0; off < c.data.length; off += slice) {
          const piece = slice >= c.data.length ? c.data : c.data.subarray(off, off + slice);
          const start = Math.max(TimedQueue.now(), q.tail);
          q.push({ data: piece, binary: c.binary }, start + piece.length / rate);
        }
      },
      end() {
        q.push(null, TimedQueue.now());
      },
      close(flush) {
        if (flush) q.flush();
        else q.clear();
      },
    };
  },
});

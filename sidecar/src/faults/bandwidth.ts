/** bandwidth: cap throughput at `rate` KB/s by spacing out slices of the data. */
import { registerFault } from './registry.js';
import { TimedQueue } from '../pipeline/timed-queue.js';

registerFault({
  type: 'bandwidth',
  doc: 'Limit throughput to `rate` KB/s (also "1mbps"-style strings; 0 = unlimited). tcp chunks are sliced into 100 ms worth of bytes; ws messages stay whole.',
  protocols: ['tcp', 'ws'],
  attributes: {
    rate: { type: 'number', default: 0, min: 0, unit: 'rate', doc: 'KB/s; 0 = unlimited (as in Toxiproxy)' },
  },
  stage(ctx) {
    const q = new TimedQueue({ emit: ctx.emit, end: ctx.end });
    return {
      chunk(c) {
        const rate = ctx.attrs.rate as number; // KB/s == bytes per ms; read per chunk, so an update applies at once
        // Unlimited, like Toxiproxy's rate 0; behind data still queued, so order is kept.
        if (rate <= 0) return q.size > 0 ? q.push(c, TimedQueue.now()) : ctx.emit(c);
        const slice = ctx.protocol === 'tcp' ? Math.max(1, Math.floor(rate * 100)) : Infinity;
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

/** slicer: cut tcp chunks into small pieces sent `delay` µs apart (exercises parsers' reassembly). */
import { registerFault } from './registry.js';
import { TimedQueue } from '../pipeline/timed-queue.js';

registerFault({
  type: 'slicer',
  doc: 'Slice each chunk into pieces of `average_size` ± `size_variation` bytes, `delay` µs apart.',
  protocols: ['tcp'],
  attributes: {
    average_size: { type: 'number', default: 1, min: 1, doc: 'bytes' },
    size_variation: { type: 'number', default: 0, min: 0, doc: 'bytes' },
    delay: { type: 'number', default: 0, min: 0, unit: 'us-duration', doc: 'µs between pieces' },
  },
  stage(ctx) {
    const q = new TimedQueue({ emit: ctx.emit, end: ctx.end });
    return {
      chunk(c) {
        const avg = ctx.attrs.average_size as number;
        const variation = Math.min(ctx.attrs.size_variation as number, avg - 1);
        const gapMs = (ctx.attrs.delay as number) / 1000;
        ctx.fired();
        let off = 0;
        while (off < c.data.length) {
          const size = Math.max(1, Math.round(avg + (ctx.rng.next() * 2 - 1) * variation));
          const piece = c.data.subarray(off, off + size);
          off += size;
          // Each piece leaves at least `delay` after the previous one.
          const now = TimedQueue.now();
          q.push({ data: piece, binary: c.binary }, q.tail > 0 ? Math.max(now, q.tail + gapMs) : now);
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

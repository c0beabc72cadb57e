/** latency: delay every chunk by latency ± jitter, counted from its arrival so delays don't add up. */
import { registerFault } from './registry.js';
import { TimedQueue } from '../pipeline/timed-queue.js';

registerFault({
  type: 'latency',
  doc: 'Delay each chunk/message by `latency` ms ± `jitter` ms, measured from its arrival; order is kept.',
  protocols: ['tcp', 'ws'],
  attributes: {
    latency: { type: 'number', default: 0, min: 0, unit: 'duration', doc: 'delay in ms' },
    jitter: { type: 'number', default: 0, min: 0, unit: 'duration', doc: 'uniform ± spread in ms' },
  },
  stage(ctx) {
    const q = new TimedQueue({ emit: ctx.emit, end: ctx.end });
    return {
      chunk(c) {
        // Read per chunk: an update applies to what comes next, what is held keeps its due time.
        const latency = ctx.attrs.latency as number;
        const jitter = ctx.attrs.jitter as number;
        const delay = Math.max(0, latency + (jitter > 0 ? (ctx.rng.next() * 2 - 1) * jitter : 0));
        ctx.fired();
        q.push(c, TimedQueue.now() + delay);
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

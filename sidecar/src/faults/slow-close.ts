/** slow_close: hold the end of the stream (FIN / ws close) for `delay` ms. */
import { registerFault } from './registry.js';

registerFault({
  type: 'slow_close',
  doc: 'Delay the close (FIN, or the ws close) by `delay` ms; data passes untouched.',
  protocols: ['tcp', 'ws'],
  attributes: {
    delay: { type: 'number', default: 0, min: 0, unit: 'duration', doc: 'ms' },
  },
  stage(ctx) {
    let timer: NodeJS.Timeout | null = null;
    return {
      chunk: ctx.emit,
      end() {
        ctx.fired();
        timer = setTimeout(() => {
          timer = null;
          ctx.end();
        }, ctx.attrs.delay as number);
      },
      close(flush) {
        if (!timer) return;
        clearTimeout(timer);
        timer = null;
        if (flush) ctx.end();
      },
    };
  },
});

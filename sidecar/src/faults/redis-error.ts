/**
 * redis_error: while active, answer every Redis command on the affected
 * connections with an error reply (-LOADING, -OOM, -ERR ...) instead of
 * forwarding it. Commands are parsed (RESP arrays and inline commands), so a
 * pipeline of N commands gets N errors. Replies to commands forwarded before
 * the fault was added may still arrive after the first injected error.
 */
import { registerFault } from './registry.js';

/** Length of the first complete command in buf, or 0 when more bytes are needed. */
function commandLength(buf: Buffer): number {
  if (buf.length === 0) return 0;
  if (buf[0] !== 0x2a /* '*' */) {
    const nl = buf.indexOf(0x0a);
    return nl < 0 ? 0 : nl + 1;
  }
  let pos = buf.indexOf(0x0a);
  if (pos < 0) return 0;
  const count = parseInt(buf.subarray(1, pos).toString('ascii'), 10);
  pos += 1;
  for (let i = 0; i < count; i++) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return 0;
    const len = parseInt(buf.subarray(pos + 1, nl).toString('ascii'), 10);
    pos = nl + 1 + Math.max(0, len) + 2;
    if (pos > buf.length) return 0;
  }
  return pos;
}

registerFault({
  type: 'redis_error',
  doc: 'Answer each Redis command with the error reply `error` (e.g. "LOADING Redis is loading the dataset in memory", "OOM command not allowed...").',
  protocols: ['tcp'],
  fixedStream: 'upstream',
  attributes: {
    error: { type: 'string', default: 'LOADING Redis is loading the dataset in memory', doc: 'error reply, without the leading "-"' },
  },
  stage(ctx) {
    const reply = Buffer.from(`-${String(ctx.attrs.error).replace(/[\r\n]/g, ' ')}\r\n`);
    let pending: Buffer = Buffer.alloc(0);
    return {
      chunk(c) {
        pending = pending.length ? Buffer.concat([pending, c.data]) : c.data;
        for (let n = commandLength(pending); n > 0; n = commandLength(pending)) {
          pending = pending.subarray(n);
          ctx.fired();
          ctx.conn.injectToClient(reply);
        }
        ctx.drop(c);
      },
      close(flush) {
        // A half-received command goes on to the server once the fault is gone.
        if (flush && pending.length) ctx.emit({ data: pending, binary: false });
        pending = Buffer.alloc(0);
      },
    };
  },
});

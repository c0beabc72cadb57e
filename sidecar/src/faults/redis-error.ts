/**
 * redis_error: while active, answer every Redis command on the affected
 * connections with an error reply (-LOADING, -OOM, -ERR ...) instead of
 * forwarding it. Commands are found with a bounded streaming RESP scanner
 * (multibulk and inline, pipelined too); each error enters the reply stream
 * after the server's replies to the commands forwarded before it (see
 * protocols/resp-tracker.ts), so FIFO clients match it to the right command.
 * A command the client had half sent when the fault was added is completed to
 * the server, not cut. A bad length closes the connection and is counted.
 *
 * Mid-stream (the fast path parsed nothing before the fault), the stage first
 * looks for a command boundary (resync.ts), forwards what comes before it, and
 * sends the tracker's sync marker there; from that boundary on it answers.
 */
import { registerFault } from './registry.js';
import { RespError, RespScanner } from '../protocols/resp.js';
import { isMarkerCommand } from '../protocols/resp-marker.js';
import { findCommandStart } from '../protocols/resync.js';

/** Bytes of a half-received command kept so it can go on to the server if the fault is removed. */
const MAX_PENDING = 16 * 1024 * 1024;

registerFault({
  type: 'redis_error',
  doc: 'Answer each Redis command with the error reply `error` (e.g. "LOADING Redis is loading the dataset in memory", "OOM command not allowed..."), in order with the replies to commands already forwarded.',
  protocols: ['tcp'],
  fixedStream: 'upstream',
  attributes: {
    error: { type: 'string', default: 'LOADING Redis is loading the dataset in memory', doc: 'error reply, without the leading "-"' },
  },
  stage(ctx) {
    const reply = () => Buffer.from(`-${String(ctx.attrs.error).replace(/[\r\n]/g, ' ')}\r\n`);
    const attached = ctx.conn.respAttach();
    // Start where the server's request stream is: the rest of a half-sent command is forwarded, not answered.
    const scanner = attached.mode === 'continue' ? attached.scanner : new RespScanner('request');
    let forwarding = scanner.midMessage;
    let syncing = attached.mode === 'resync';
    let marker = attached.mode === 'resync' ? attached.marker : undefined;
    const markerSent = attached.mode === 'resync' ? attached.markerSent : undefined;
    let prevByte = -1; // last byte seen while syncing (-1: none yet, the fault's first read)
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let truncated = false;
    let broken = false;
    return {
      chunk(c) {
        if (broken) return ctx.drop(c);
        if (syncing) {
          const at = findCommandStart(c.data, prevByte);
          if (at < 0) {
            // No boundary seen yet: these bytes belong to commands sent before the fault; the server answers them.
            if (c.data.length > 0) prevByte = c.data[c.data.length - 1]!;
            return ctx.emit(c);
          }
          syncing = false;
          if (at > 0) ctx.emit({ data: c.data.subarray(0, at), binary: false });
          if (marker) {
            markerSent?.();
            ctx.emit({ data: marker, binary: false });
          }
          marker = undefined;
          if (at > 0) c = { data: c.data.subarray(at), binary: false };
        }
        let start = 0;
        let emitted = 0; // bytes of this chunk passed on (the rest is answered or kept)
        try {
          scanner.feed(c.data, (end, counts) => {
            if (forwarding) {
              forwarding = false;
              emitted += end;
              ctx.emit({ data: c.data.subarray(0, end), binary: false });
            } else if (counts && isMarkerCommand(c.data, start, end)) {
              emitted += end - start; // another redis_error's sync marker: the sidecar's own, for the server
              ctx.emit({ data: c.data.subarray(start, end), binary: false });
            } else if (counts) {
              ctx.fired();
              ctx.conn.injectReply(reply());
            }
            start = end;
            pending = [];
            pendingBytes = 0;
            truncated = false;
          });
        } catch (err) {
          if (!(err instanceof RespError)) throw err;
          broken = true;
          ctx.drop(c);
          ctx.protocolError(err.message);
          ctx.conn.close(`redis_error: ${err.message}`);
          return;
        }
        const rest = start === 0 ? c.data : c.data.subarray(start);
        if (rest.length > 0) {
          if (forwarding) {
            emitted += rest.length;
            ctx.emit({ data: rest, binary: false });
          } else if (!truncated && pendingBytes + rest.length <= MAX_PENDING) {
            pending.push(rest);
            pendingBytes += rest.length;
          } else {
            truncated = true;
            pending = [];
          }
        }
        // Accounting: everything not emitted above is dropped (answered, or kept as a copy for a removal).
        if (emitted < c.data.length) ctx.drop({ data: c.data.subarray(emitted), binary: false }); // only its length counts
      },
      close(flush) {
        ctx.conn.respDetach();
        // A half-received command goes on to the server once the fault is gone; one too large to keep cannot.
        if (flush && truncated) ctx.conn.close('redis_error removed in the middle of a command too large to keep');
        else if (flush && pending.length) ctx.emit({ data: Buffer.concat(pending), binary: false });
        pending = [];
      },
    };
  },
});

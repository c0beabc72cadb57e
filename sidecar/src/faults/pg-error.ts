/**
 * pg_error: refuse new PostgreSQL connections the way a real server does, with
 * an ErrorResponse carrying a chosen SQLSTATE (53300 too many connections,
 * 57P01 admin shutdown, 57P03 cannot connect now...). SSL and GSS encryption
 * requests are declined with 'N' first, as a server without TLS would.
 */
import type net from 'node:net';
import { registerFault } from './registry.js';
import { CANCEL_REQUEST, GSS_REQUEST, PgProtocolError, SSL_REQUEST, readStartupPacket } from '../protocols/pg.js';

/** A client may ask for SSL, then GSS, before its startup packet; more than this is not a client. */
const MAX_NEGOTIATIONS = 2;

function errorResponse(severity: string, sqlstate: string, message: string): Buffer {
  const fields = [`S${severity}`, `V${severity}`, `C${sqlstate}`, `M${message}`];
  const body = Buffer.concat([...fields.map((f) => Buffer.from(`${f}\0`, 'utf8')), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0, 'ascii');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function answer(socket: net.Socket, reply: Buffer, protocolError: (why: string) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let negotiations = 0;
  let done = false;
  // A client that never sends its startup packet is dropped rather than kept forever.
  socket.setTimeout(10_000, () => socket.destroy());
  const fail = (why: string) => {
    done = true;
    protocolError(why);
    socket.destroy();
  };
  socket.on('data', (d: Buffer) => {
    if (done) return;
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      let packet;
      try {
        packet = readStartupPacket(buf);
      } catch (err) {
        if (!(err instanceof PgProtocolError)) throw err;
        return fail(err.message);
      }
      if (!packet) return;
      buf = buf.subarray(packet.len);
      if (packet.code === SSL_REQUEST || packet.code === GSS_REQUEST) {
        if (++negotiations > MAX_NEGOTIATIONS) return fail(`more than ${MAX_NEGOTIATIONS} SSL/GSS requests`);
        socket.write('N');
        continue;
      }
      done = true;
      // A cancel request gets no answer from a server, only the close.
      if (packet.code === CANCEL_REQUEST) socket.end();
      else socket.end(reply);
      return;
    }
  });
}

registerFault({
  type: 'pg_error',
  doc: 'Answer new PostgreSQL connections with an ErrorResponse (`sqlstate`, `message`, `severity`) instead of connecting them.',
  protocols: ['tcp'],
  attributes: {
    sqlstate: { type: 'string', default: '53300', doc: 'SQLSTATE code, e.g. 53300, 57P01, 57P03' },
    message: { type: 'string', default: 'sorry, too many clients already', doc: 'error message' },
    severity: { type: 'string', default: 'FATAL', oneOf: ['FATAL', 'PANIC', 'ERROR'], doc: 'severity field' },
  },
  accept(ctx) {
    const reply = errorResponse(ctx.attrs.severity as string, ctx.attrs.sqlstate as string, ctx.attrs.message as string);
    return { kind: 'handle', handle: (socket) => answer(socket, reply, ctx.protocolError) };
  },
});

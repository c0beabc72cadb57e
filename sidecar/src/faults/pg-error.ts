/**
 * pg_error: refuse new PostgreSQL connections the way a real server does, with
 * an ErrorResponse carrying a chosen SQLSTATE (53300 too many connections,
 * 57P01 admin shutdown, 57P03 cannot connect now...). SSL and GSS encryption
 * requests are declined with 'N' first, as a server without TLS would.
 */
import type net from 'node:net';
import { registerFault } from './registry.js';

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

function errorResponse(severity: string, sqlstate: string, message: string): Buffer {
  const fields = [`S${severity}`, `V${severity}`, `C${sqlstate}`, `M${message}`];
  const body = Buffer.concat([...fields.map((f) => Buffer.from(`${f}\0`, 'utf8')), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0, 'ascii');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function answer(socket: net.Socket, reply: Buffer): void {
  let buf = Buffer.alloc(0);
  // A client that never sends its startup packet is dropped rather than kept forever.
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 8) {
      const len = buf.readInt32BE(0);
      if (buf.length < len) return;
      const code = buf.readInt32BE(4);
      buf = buf.subarray(len);
      if (code === SSL_REQUEST || code === GSS_REQUEST) {
        socket.write('N');
        continue;
      }
      socket.end(reply);
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
    return { kind: 'handle', handle: (socket) => answer(socket, reply) };
  },
});

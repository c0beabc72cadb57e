// The "peer we dial" attacker: a server at one of A's configured peer URLs that, once armed, sends 64 MB frames
// the moment each of A's dials opens (before any identity proof). In process: it only writes a prebuilt buffer.
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AttackerReport } from './plan.js';

const FRAME = Buffer.from(`["NOTICE","${'x'.repeat(64 * 1024 * 1024 - 14)}"]`);

export interface DialledAttacker {
  url: string;
  arm(): void;
  /** Stops sending; what happened since arm(). */
  disarm(): AttackerReport;
  close(): Promise<void>;
}

export async function startDialledAttacker(): Promise<DialledAttacker> {
  let armedAt: number | null = null;
  let sent = 0;
  let dials = 0;
  let firstCloseMs: number | null = null;
  let firstCode: number | null = null;
  const answers: Record<string, number> = {};
  const http = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/nostr+json' });
    res.end(JSON.stringify({ name: 'hostile', software: 'https://example.invalid/hostile' }));
  });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => undefined);
    if (armedAt === null) return; // silent: A's handshake times out and it dials again later
    dials++;
    ws.on('close', (code) => {
      if (armedAt === null) return;
      answers[`closed ${code}`] = (answers[`closed ${code}`] ?? 0) + 1;
      firstCloseMs ??= Math.round(performance.now() - armedAt);
      firstCode ??= code;
    });
    const next = (left: number) => {
      if (left === 0 || ws.readyState !== ws.OPEN || armedAt === null) return;
      ws.send(FRAME, { binary: false }, () => {
        sent++;
        next(left - 1);
      });
    };
    next(3);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `ws://127.0.0.1:${(http.address() as { port: number }).port}`,
    arm: () => void (armedAt = performance.now()),
    disarm: () => {
      armedAt = null;
      return { type: 'report', attack: 'peer-big-frame', sent, answers: { ...answers, dials }, auth: null, firstRefusalMs: firstCloseMs, closedMs: firstCloseMs, closeCode: firstCode, reconnect: `A dialled again ${Math.max(0, dials - 1)} times` };
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise((r) => http.close(() => r(undefined)));
    },
  };
}

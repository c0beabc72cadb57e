/** Shared helpers for the sidecar tests: an in-process sidecar, raw HTTP calls, echo servers, timing. */
import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';
import { startSidecar, type RunningSidecar } from '../../sidecar/src/app.js';
import { createLogger } from '../../sidecar/src/logger.js';
import type { SidecarConfig } from '../../sidecar/src/config.js';
import { DEFAULT_PROFILES_DIR } from '../../sidecar/src/profiles/loader.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'sidecar/dist/main.js');

export async function sidecar(over: Partial<SidecarConfig> = {}): Promise<RunningSidecar> {
  const cfg: SidecarConfig = {
    node: 'a',
    seed: 42,
    api: { host: '127.0.0.1', port: 0 },
    dialTimeoutMs: 2000,
    maxActiveFaults: 100,
    profilesDir: DEFAULT_PROFILES_DIR,
    logLevel: 'silent',
    links: [],
    ...over,
  };
  return startSidecar(cfg, createLogger(process.env.SIDECAR_TEST_LOG ?? 'silent'));
}

export interface Reply {
  status: number;
  body: any;
  text: string;
}

/** A raw HTTP call, shaped like Toxiproxy clients' (JSON body, no special headers). */
export async function call(base: string, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (typeof body !== 'string') (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(base + p, init);
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, text };
}

/** A tcp echo server; returns its port and a closer. */
export async function echoServer(): Promise<{ port: number; close(): Promise<void>; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function portOf(listen: string): number {
  return Number(listen.split(':').pop());
}

interface Tracked {
  parts: Buffer[];
  how: 'reset' | 'close' | null;
  waiters: Array<() => void>;
}
const tracked = new WeakMap<net.Socket, Tracked>();

/** Track a client socket from the start, so a reset that comes early is not missed. */
export function track(s: net.Socket): net.Socket {
  const st: Tracked = { parts: [], how: null, waiters: [] };
  tracked.set(s, st);
  const end = (how: 'reset' | 'close') => {
    if (st.how) return;
    st.how = how;
    for (const w of st.waiters.splice(0)) w();
  };
  s.on('error', (e: NodeJS.ErrnoException) => end(e.code === 'ECONNRESET' ? 'reset' : 'close'));
  s.on('close', () => setImmediate(() => end('close')));
  return s;
}

export async function connect(port: number): Promise<net.Socket> {
  const s = track(net.connect({ port, host: '127.0.0.1', noDelay: true }));
  // A refused connection (RST at accept) may fail before or right after 'connect': both count as connected here.
  await new Promise<void>((resolve) => {
    s.once('connect', () => resolve());
    tracked.get(s)!.waiters.push(resolve);
  });
  return s;
}

/** Send `msg` and wait until as many bytes came back; returns elapsed ms. */
export async function roundTrip(s: net.Socket, msg: Buffer, timeoutMs = 5000): Promise<number> {
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no echo within ${timeoutMs} ms (got ${got} bytes)`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= msg.length) {
        cleanup();
        resolve();
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error('closed'));
    };
    const cleanup = () => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.on('close', onClose);
    s.write(msg);
  });
  return performance.now() - t0;
}

/** How a tracked socket ended within waitMs: 'reset' (ECONNRESET), 'close' (FIN), or still 'open'; data received meanwhile. */
export function outcome(s: net.Socket, waitMs: number): Promise<{ how: 'reset' | 'close' | 'open'; data: Buffer; ms: number }> {
  const st = tracked.get(s) ?? (track(s), tracked.get(s)!);
  const t0 = performance.now();
  s.on('data', (d: Buffer) => st.parts.push(d));
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      resolve({ how: st.how ?? 'open', data: Buffer.concat(st.parts), ms: performance.now() - t0 });
    };
    const timer = setTimeout(finish, waitMs);
    if (st.how) finish();
    else st.waiters.push(finish);
  });
}

/** A ws echo server that also serves a NIP-11-style JSON document over plain HTTP. */
/**
 * A WebSocket echo server standing in for a relay. It records what it received, including the close frames, so a
 * test can tell what crossed the proxy from what the proxy answered itself; the message `close:CODE:REASON` makes
 * it close the connection from its side.
 */
export async function wsEchoServer(): Promise<{ port: number; close(): Promise<void>; protocols: string[]; received: string[]; closes: Array<{ code: number; reason: string }> }> {
  const protocols: string[] = [];
  const received: string[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/nostr+json' });
    res.end(JSON.stringify({ name: 'test relay', accept: req.headers.accept ?? null }));
  });
  const wss = new WebSocketServer({ server, handleProtocols: (set) => (set.has('nostr') ? 'nostr' : false) });
  wss.on('connection', (ws, req) => {
    protocols.push(String(req.headers['sec-websocket-protocol'] ?? ''));
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    ws.on('message', (d, isBinary) => {
      received.push(d.toString());
      const close = /^close:(\d+):(.*)$/.exec(d.toString());
      if (close) ws.close(Number(close[1]), close[2]);
      else ws.send(d, { binary: isBinary });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    protocols,
    received,
    closes,
    close: () => {
      for (const c of wss.clients) c.terminate();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export async function wsOpen(port: number, protocols: string[] = []): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, protocols);
  await once(ws, 'open');
  return ws;
}

/**
 * Collect ws messages until none came for `quietMs` after the last one; when none
 * come at all, give up after `firstMs` (the box may be busy: don't confuse slow with lost).
 */
export function collect(ws: WebSocket, quietMs: number, firstMs = 2000): Promise<string[]> {
  const got: string[] = [];
  // Clocks start at the first tick, so synchronous work after collect() (signing events) doesn't eat the window.
  let t0 = 0;
  let last = 0;
  const on = (d: Buffer) => {
    got.push(d.toString());
    last = Date.now();
  };
  ws.on('message', on);
  return new Promise((r) => {
    const iv = setInterval(() => {
      const now = Date.now();
      if (t0 === 0) t0 = now;
      if (last === 0) last = now;
      const quiet = got.length === 0 ? now - t0 >= Math.max(firstMs, quietMs) : now - last >= quietMs;
      if (quiet || now - t0 > 8000) {
        clearInterval(iv);
        ws.off('message', on);
        r(got);
      }
    }, 10);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Spawn the built CLI; resolves with exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`cli ${args.join(' ')} timed out`)); }, timeoutMs);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Start `chaos-sidecar start ...` as a child; resolves once it prints its ready line. */
export function spawnSidecar(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: ChildProcess; api: string; line: string; stop(): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [MAIN, 'start', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /chaos-sidecar ready .*api=(\S+).*/.exec(out);
      if (m) {
        resolve({
          proc,
          api: m[1]!,
          line: m[0],
          stop: async () => {
            if (proc.exitCode !== null) return proc.exitCode;
            proc.kill('SIGTERM');
            const [code] = await once(proc, 'exit');
            return code as number | null;
          },
        });
      }
    });
    proc.on('exit', (code) => reject(new Error(`sidecar exited with ${code} before ready: ${err}`)));
  });
}

/** The port a link of this sidecar listens on. */
export function linkPort(sc: RunningSidecar, name: string): number {
  return portOf(sc.sidecar.links.get(name)!.spec().listen);
}

/** Adds a toxic through the Toxiproxy-compatible API; throws with the API's answer unless it is 200. */
export async function addToxic(sc: RunningSidecar, link: string, toxic: object): Promise<void> {
  const r = await call(sc.apiUrl, 'POST', `/proxies/${link}/toxics`, toxic);
  if (r.status !== 200) throw new Error(r.text);
}

/** Small HTTP helpers: JSON replies, Toxiproxy-shaped errors, bounded body reading. */
import type http from 'node:http';

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const MAX_BODY = 1 << 20;

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Toxiproxy's error body: {"error": "...", "status": N}. */
export function sendError(res: http.ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message, status });
}

export function sendEmpty(res: http.ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

const bodies = new WeakMap<http.IncomingMessage, Promise<string>>();

/**
 * The request body, at most 1 MiB (413 beyond). Read once per request: the server reads every body before it
 * answers, because answering and closing with unread bytes makes the kernel reset the client's connection.
 */
export function readBody(req: http.IncomingMessage): Promise<string> {
  let p = bodies.get(req);
  if (!p) {
    p = readBodyOnce(req);
    bodies.set(req, p);
  }
  return p;
}

function readBodyOnce(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body over 1 MiB'));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export function parseJson(text: string): unknown {
  if (text.trim() === '') throw new HttpError(400, 'missing request body');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `bad request body: ${(err as Error).message}`);
  }
}

import { createServer } from 'node:net';

/** One port the OS considers free right now (listen on 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** `count` distinct free ports, handed out one per call of the returned function. */
export async function freePortSource(count: number): Promise<() => number> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  const list = [...ports];
  return () => {
    const next = list.shift();
    if (next === undefined) throw new Error('ran out of pre-allocated free ports');
    return next;
  };
}

/** Ports needed by a cluster of n nodes: PostgreSQL, Redis, and per node relay, admin, sidecar API and its links. */
export function portsNeeded(nodes: number): number {
  return 2 + nodes * (3 + 2 + (nodes - 1));
}

/** host:port parsing shared by links, config and the API ("127.0.0.1:0", "[::1]:80", "ws://h:p"). */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(value: string, what: string): HostPort {
  const s = value.replace(/^(ws|http|tcp):\/\//, '').replace(/\/$/, '');
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new Error(`${what} must look like "host:port", got ${JSON.stringify(value)}`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || host === '::ffff:127.0.0.1';
}

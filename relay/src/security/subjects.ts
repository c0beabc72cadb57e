import type { IngestSource } from '../ingest/source.js';

/**
 * A ban or reputation subject: a peer node id (64 hex) or a client IP address. Connections carry `ip:port`;
 * IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are folded to their IPv4 form so one client has one subject.
 */
export type SubjectType = 'peer' | 'client';

const NODE_ID = /^[0-9a-f]{64}$/;

export function isNodeId(value: string): boolean {
  return NODE_ID.test(value);
}

export function normalizeIp(ip: string): string {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  return bare.toLowerCase().startsWith('::ffff:') && bare.includes('.') ? bare.slice(7) : bare.toLowerCase();
}

/** The IP of a connection address `ip:port` (the port is always the last colon-separated part). */
export function ipOfAddress(address: string): string {
  const colon = address.lastIndexOf(':');
  return normalizeIp(colon > 0 ? address.slice(0, colon) : address);
}

/** Normalises a subject given by an operator or a caller: node ids lowercased, IPs folded. */
export function normalizeSubject(subject: string): string {
  const trimmed = subject.trim();
  return isNodeId(trimmed.toLowerCase()) ? trimmed.toLowerCase() : normalizeIp(trimmed);
}

export function subjectTypeOf(subject: string): SubjectType {
  return isNodeId(subject) ? 'peer' : 'client';
}

/** Who is accountable for an event: the peer node, or the client's IP address. */
export function subjectOfSource(source: IngestSource): string {
  return source.kind === 'peer' ? source.nodeId.toLowerCase() : ipOfAddress(source.address);
}

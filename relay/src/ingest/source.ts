/** Where an event entered this relay: a client connection or a peer relay. */
export type IngestSource =
  /** `authenticatedAs`: the key this client proved by NIP-42 AUTH, if any (NIP-70); it grants no peer rights. */
  | { kind: 'client'; address: string; connectionId: number; authenticatedAs?: string }
  | { kind: 'peer'; nodeId: string; url: string; connectionId?: number };

export function describeSource(source: IngestSource): string {
  return source.kind === 'client' ? `client ${source.address}` : `peer ${source.nodeId}`;
}

/** The answer to an EVENT: `["OK", id, ok, message]`; message carries a NIP-01 prefix when not empty. */
export interface IngestResult {
  ok: boolean;
  message: string;
}

import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finalizeEvent, generateSecretKey, getPublicKey, type EventTemplate, type VerifiedEvent } from 'nostr-tools/pure';

export const NODE_KEY_FILE = 'node.key';

/** This relay's secp256k1 identity: node id = its x-only public key (hex), as in Nostr. */
export class NodeKey {
  readonly nodeId: string;
  private constructor(private readonly secret: Uint8Array) {
    this.nodeId = getPublicKey(secret);
  }

  /**
   * Loads `<dataDir>/node.key` (64 hex characters), creating it on first start. The key must survive restarts:
   * reputation and bans attach to the node id, so a new key would be a new node to every peer.
   */
  static loadOrCreate(dataDir: string): { key: NodeKey; created: boolean; path: string } {
    const path = join(dataDir, NODE_KEY_FILE);
    if (existsSync(path)) {
      const hex = readFileSync(path, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${path} does not hold a 64-character hex secret key`);
      return { key: new NodeKey(Uint8Array.from(Buffer.from(hex, 'hex'))), created: false, path };
    }
    mkdirSync(dataDir, { recursive: true });
    const secret = generateSecretKey();
    // Written aside then renamed, so a crash mid-write never leaves a truncated key behind.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.from(secret).toString('hex') + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
    return { key: new NodeKey(secret), created: true, path };
  }

  sign(template: EventTemplate): VerifiedEvent {
    return finalizeEvent(template, this.secret);
  }
}

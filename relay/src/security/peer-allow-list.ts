/**
 * Which node ids may act as peers of this relay: those the operator listed (`peer_node_ids`) and those our
 * configured peer links proved (the remote signed our fresh challenge with its node key, bound to the URL we
 * dialled). Nothing else becomes a peer: a key that answers AUTH is a client.
 *
 * "Configured" peers (proven behind a URL in `peers`) are the operator's own network: their rate-limit
 * refusals cost no reputation (a large heal is not an attack).
 */
export class PeerAllowList {
  private readonly listed: ReadonlySet<string>;
  /** Node id → the configured URLs that proved it. */
  private readonly proven = new Map<string, Set<string>>();
  private readonly waiters = new Set<{ nodeId: string; resolve: (ok: boolean) => void }>();
  /** Configured links that have not proven a node id yet: an unknown AUTH may be one of them. */
  private unproven: () => number = () => 0;

  constructor(listed: readonly string[], private readonly selfId: string | null = null) {
    this.listed = new Set(listed.map((id) => id.toLowerCase()));
  }

  /** Tells the list how many configured links are still unproven (the peering layer owns the links). */
  setUnprovenCounter(count: () => number): void {
    this.unproven = count;
  }

  allows(nodeId: string): boolean {
    const id = nodeId.toLowerCase();
    return id !== this.selfId && (this.listed.has(id) || this.proven.has(id));
  }

  /** A node proven behind one of our configured peer URLs (our own network). */
  isConfigured(nodeId: string): boolean {
    return this.proven.has(nodeId.toLowerCase());
  }

  /** Our configured link to `url` proved `nodeId`. */
  prove(nodeId: string, url: string): void {
    const id = nodeId.toLowerCase();
    if (id === this.selfId) return;
    for (const urls of this.proven.values()) urls.delete(url);
    for (const [other, urls] of [...this.proven]) if (urls.size === 0) this.proven.delete(other);
    const urls = this.proven.get(id) ?? new Set<string>();
    urls.add(url);
    this.proven.set(id, urls);
    for (const w of [...this.waiters]) if (w.nodeId === id) w.resolve(true);
  }

  /**
   * Whether `nodeId` is (or, within `timeoutMs`, becomes) a peer. Waits only while some configured link is
   * unproven: an inbound AUTH from a configured peer can arrive before our own link to it has proven who it is.
   */
  async allowsSoon(nodeId: string, timeoutMs: number): Promise<boolean> {
    if (this.allows(nodeId)) return true;
    if (this.unproven() === 0 || timeoutMs <= 0) return false;
    const id = nodeId.toLowerCase();
    return new Promise<boolean>((resolve) => {
      const waiter = {
        nodeId: id,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      timer.unref();
      this.waiters.add(waiter);
    });
  }

  list(): { listed: string[]; proven: Array<{ nodeId: string; urls: string[] }> } {
    return { listed: [...this.listed], proven: [...this.proven].map(([nodeId, urls]) => ({ nodeId, urls: [...urls] })) };
  }
}

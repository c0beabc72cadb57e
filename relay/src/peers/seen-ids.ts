/** A bounded set of recently seen ids (oldest evicted first): dedup for forwarding and gossip. */
export class SeenIds {
  private readonly ids = new Set<string>();
  constructor(private readonly capacity: number) {}

  /** Adds the id; returns false if it was already there. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }
}

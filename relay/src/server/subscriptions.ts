import type { NostrEvent } from '../nostr/event.js';
import { matchFilter, type Filter } from '../nostr/filter.js';

/** Whoever receives live events: a client connection (or a peer link). */
export interface Subscriber {
  /** Sends one pre-serialized relay message. */
  sendEvent(subId: string, raw: string): void;
}

interface Subscription {
  subscriber: Subscriber;
  subId: string;
  filters: Filter[];
}

/**
 * Live subscriptions with an inverted index, so fan-out looks only at subscriptions that could match:
 * each filter is filed under its most selective field (ids > authors > tags > kinds) or, if it has
 * none, in the scan list every event visits.
 */
export class SubscriptionRegistry {
  private readonly bySubscriber = new Map<Subscriber, Map<string, Subscription>>();
  private readonly index = new Map<string, Set<Subscription>>();
  private readonly scan = new Set<Subscription>();
  private total = 0;

  get size(): number {
    return this.total;
  }

  countFor(subscriber: Subscriber): number {
    return this.bySubscriber.get(subscriber)?.size ?? 0;
  }

  has(subscriber: Subscriber, subId: string): boolean {
    return this.bySubscriber.get(subscriber)?.has(subId) ?? false;
  }

  /** Adds or replaces (same subscriber and id) a subscription. */
  add(subscriber: Subscriber, subId: string, filters: Filter[]): void {
    this.remove(subscriber, subId);
    const sub: Subscription = { subscriber, subId, filters };
    let subs = this.bySubscriber.get(subscriber);
    if (!subs) this.bySubscriber.set(subscriber, (subs = new Map()));
    subs.set(subId, sub);
    this.total++;
    for (const key of indexKeys(filters)) {
      if (key === null) this.scan.add(sub);
      else {
        let set = this.index.get(key);
        if (!set) this.index.set(key, (set = new Set()));
        set.add(sub);
      }
    }
  }

  remove(subscriber: Subscriber, subId: string): boolean {
    const subs = this.bySubscriber.get(subscriber);
    const sub = subs?.get(subId);
    if (!subs || !sub) return false;
    subs.delete(subId);
    if (subs.size === 0) this.bySubscriber.delete(subscriber);
    this.total--;
    for (const key of indexKeys(sub.filters)) {
      if (key === null) this.scan.delete(sub);
      else {
        const set = this.index.get(key);
        set?.delete(sub);
        if (set?.size === 0) this.index.delete(key);
      }
    }
    return true;
  }

  removeAll(subscriber: Subscriber): void {
    for (const subId of [...(this.bySubscriber.get(subscriber)?.keys() ?? [])]) this.remove(subscriber, subId);
  }

  /** Delivers an event to every matching subscription except those of `except` (its source). */
  fanOut(event: NostrEvent, raw: string, except?: Subscriber): number {
    const candidates = new Set<Subscription>(this.scan);
    const add = (key: string) => {
      const set = this.index.get(key);
      if (set) for (const sub of set) candidates.add(sub);
    };
    add('i:' + event.id);
    add('a:' + event.pubkey);
    add('k:' + event.kind);
    for (const tag of event.tags) if (tag.length > 1 && tag[0]!.length === 1) add(`t:${tag[0]}:${tag[1]}`);
    let delivered = 0;
    for (const sub of candidates) {
      if (sub.subscriber === except) continue;
      if (sub.filters.some((f) => matchFilter(f, event))) {
        sub.subscriber.sendEvent(sub.subId, raw);
        delivered++;
      }
    }
    return delivered;
  }
}

/** The index keys a subscription is filed under; null means "scan". */
function indexKeys(filters: Filter[]): Array<string | null> {
  const keys: Array<string | null> = [];
  for (const f of filters) {
    if (f.ids) keys.push(...f.ids.map((id) => 'i:' + id));
    else if (f.authors) keys.push(...f.authors.map((a) => 'a:' + a));
    else if (f.tags && Object.keys(f.tags).length > 0) {
      const [letter, values] = Object.entries(f.tags)[0]!;
      keys.push(...values.map((v) => `t:${letter}:${v}`));
    } else if (f.kinds) keys.push(...f.kinds.map((k) => 'k:' + k));
    else keys.push(null);
  }
  return [...new Set(keys)];
}

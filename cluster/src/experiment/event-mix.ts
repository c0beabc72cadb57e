/**
 * What the workload publishes: a mix of regular notes (kind 1, padded to a chosen size), replaceable (kind 10100)
 * and addressable (kind 30100, d tags) updates, and deletions (kind 5) of notes acknowledged earlier. Each event
 * remembers what it is, so the checker can say what every node must and must not hold once the run is over.
 *
 * Replaceable and addressable streams publish at most once per second each with a strictly increasing created_at,
 * so the winner of a stream is never a created_at tie (NIP-01's lowest-id rule would be judged too, but a tie says
 * more about the clock than about the relays).
 */
import { generateSecretKey, getPublicKey, type EventTemplate } from 'nostr-tools/pure';

export type EventRole = 'regular' | 'replaceable' | 'addressable' | 'deletion';

export interface MixedEvent {
  id: string;
  pubkey: string;
  kind: number;
  created_at: number;
  tags: string[][];
  content: string;
  sig: string;
}

/** An event to publish, before its signature (signer.ts signs it off the main thread). */
export interface Unsigned {
  template: EventTemplate;
  key: Uint8Array;
  role: EventRole;
  stream?: string;
  deletes?: string;
}

export interface Published {
  event: MixedEvent;
  role: EventRole;
  /** For replaceable/addressable events: the stream (pubkey:kind:d) it replaces within. */
  stream?: string;
  /** For deletions: the id deleted. */
  deletes?: string;
}

export const REPLACEABLE_KIND = 10100;
export const ADDRESSABLE_KIND = 30100;

interface Stream {
  key: Uint8Array;
  kind: number;
  d: string | null;
  lastCreatedAt: number;
}

export interface MixOptions {
  tag: string;
  /** Approximate serialized size of a regular note, bytes (padding in the content). */
  eventBytes: number;
  /** Share of publishes that are replaceable/addressable updates, and deletions (each). */
  updateShare: number;
  deletionShare: number;
}

export class EventMix {
  private readonly regularKeys = Array.from({ length: 4 }, () => generateSecretKey());
  private readonly streams: Stream[];
  private readonly padding: string;
  private seq = 0;
  /** Notes acknowledged and not yet targeted by a deletion, per author (the deletion must come from the author). */
  private readonly deletable: Array<{ id: string; key: Uint8Array }> = [];

  constructor(private readonly o: MixOptions) {
    const streamKeys = [generateSecretKey(), generateSecretKey()];
    this.streams = [
      ...streamKeys.map((key) => ({ key, kind: REPLACEABLE_KIND, d: null, lastCreatedAt: 0 })),
      ...['d0', 'd1', 'd2', 'd3'].map((d) => ({ key: streamKeys[0]!, kind: ADDRESSABLE_KIND, d, lastCreatedAt: 0 })),
    ];
    // A bare signed note with a short content is ~400 bytes of JSON.
    this.padding = 'x'.repeat(Math.max(0, o.eventBytes - 400));
  }

  /** Every author the workload signs with: the run's events are exactly those of these keys. */
  get pubkeys(): string[] {
    return [...new Set([...this.regularKeys, ...this.streams.map((s) => s.key)].map((k) => getPublicKey(k)))];
  }

  /** Called with each acknowledged regular note so a later deletion can target it. */
  acknowledged(p: Published): void {
    if (p.role !== 'regular') return;
    const key = this.regularKeys.find((k) => getPublicKey(k) === p.event.pubkey);
    if (key && this.deletable.length < 10_000) this.deletable.push({ id: p.event.id, key });
  }

  next(): Unsigned {
    const seq = this.seq++;
    const now = Math.floor(Date.now() / 1000);
    const slot = seq % 100;
    const updates = Math.round(this.o.updateShare * 100);
    const deletions = Math.round(this.o.deletionShare * 100);
    if (slot < updates) {
      const stream = this.streams.find((s) => s.lastCreatedAt < now);
      if (stream) return this.update(stream, now, seq);
    } else if (slot < updates + deletions && this.deletable.length > 0) {
      const target = this.deletable.splice(Math.floor(Math.random() * this.deletable.length), 1)[0]!;
      const template = { kind: 5, created_at: now, tags: [['e', target.id], ['t', this.o.tag]], content: `${this.o.tag} delete #${seq}` };
      return { template, key: target.key, role: 'deletion', deletes: target.id };
    }
    const key = this.regularKeys[seq % this.regularKeys.length]!;
    return { template: { kind: 1, created_at: now, tags: [['t', this.o.tag]], content: `${this.o.tag} #${seq} ${this.padding}` }, key, role: 'regular' };
  }

  private update(stream: Stream, now: number, seq: number): Unsigned {
    stream.lastCreatedAt = now;
    const tags = stream.d === null ? [['t', this.o.tag]] : [['d', stream.d], ['t', this.o.tag]];
    const template = { kind: stream.kind, created_at: now, tags, content: `${this.o.tag} update #${seq}` };
    return { template, key: stream.key, role: stream.d === null ? 'replaceable' : 'addressable', stream: `${getPublicKey(stream.key)}:${stream.kind}:${stream.d ?? ''}` };
  }
}

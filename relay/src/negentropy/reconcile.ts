import { bound, compareBytes, FINGERPRINT_SIZE, ID_SIZE, Mode, NegentropyError, PROTOCOL_VERSION, Reader, Writer, type Bound, type TimestampState } from './encoding.js';
import type { NegentropyVector } from './storage.js';

/** Ranges with fewer records than this are sent as id lists; larger ones are split into this many fingerprinted buckets. */
const BUCKETS = 16;

export interface ReconcileResult {
  /** The next message to send, or null when the initiator is done. */
  output: Uint8Array | null;
  /** Ids we have and the other side lacks (initiator only). */
  have: string[];
  /** Ids the other side has and we lack (initiator only). */
  need: string[];
}

/**
 * One side of a NIP-77 reconciliation over a sealed vector: the range-based set reconciliation of
 * hoytech/negentropy v1. The initiator and the responder differ only in how they treat an id list: the
 * responder answers with its own ids for the range, the initiator computes have/need and ends that range.
 * `frameSizeLimit` (bytes before hex; 0 = none) caps an outgoing message: once reached, the rest of the
 * set is summarised as one fingerprint and settled in later rounds.
 */
export class Reconciler {
  constructor(readonly storage: NegentropyVector, readonly initiator: boolean, readonly frameSizeLimit = 0) {
    if (frameSizeLimit !== 0 && frameSizeLimit < 4096) throw new NegentropyError('frame size limit must be 0 or at least 4096');
  }

  initiate(): Uint8Array {
    if (!this.initiator) throw new NegentropyError('only the initiator starts a reconciliation');
    const out = new Writer();
    out.byte(PROTOCOL_VERSION);
    this.splitRange(0, this.storage.size, bound(Infinity), out);
    return out.result();
  }

  reconcile(message: Uint8Array): ReconcileResult {
    const query = new Reader(message);
    const have: string[] = [];
    const need: string[] = [];
    const state: TimestampState = { last: 0 };
    const full = new Writer(state);
    full.byte(PROTOCOL_VERSION);
    const version = query.byte();
    if (version < 0x60 || version > 0x6f) throw new NegentropyError('invalid negentropy protocol version byte');
    if (version !== PROTOCOL_VERSION) {
      // The spec: a responder answers an unknown version with just its own, so the initiator can downgrade.
      if (this.initiator) throw new NegentropyError(`unsupported negentropy protocol version ${version - 0x60}`);
      return { output: full.result(), have, need };
    }
    const size = this.storage.size;
    let prevBound = bound(0);
    let prevIndex = 0;
    let skip = false;
    while (query.remaining > 0) {
      const o = new Writer(state);
      const flushSkip = () => {
        if (!skip) return;
        skip = false;
        o.bound(prevBound);
        o.varint(Mode.Skip);
      };
      const currBound = query.bound();
      const mode = query.varint();
      const lower = prevIndex;
      let upper = this.storage.lowerBound(prevIndex, size, currBound);

      if (mode === Mode.Skip) {
        skip = true;
      } else if (mode === Mode.Fingerprint) {
        const theirs = query.bytes(FINGERPRINT_SIZE);
        if (compareBytes(theirs, this.storage.fingerprint(lower, upper)) !== 0) {
          flushSkip();
          this.splitRange(lower, upper, currBound, o);
        } else {
          skip = true;
        }
      } else if (mode === Mode.IdList) {
        const count = query.varint();
        if (this.initiator) {
          const theirs = new Set<string>();
          for (let i = 0; i < count; i++) theirs.add(Buffer.from(query.bytes(ID_SIZE)).toString('hex'));
          skip = true;
          for (let i = lower; i < upper; i++) {
            const id = this.storage.idHex(i);
            if (!theirs.delete(id)) have.push(id);
          }
          need.push(...theirs);
        } else {
          query.bytes(count * ID_SIZE);
          flushSkip();
          const ids = new Writer();
          let sent = 0;
          let endBound: Bound = currBound;
          for (let i = lower; i < upper; i++) {
            if (this.exceeds(full.length + ids.length)) {
              // Out of room: end this id list early; the frame-size check below fingerprints the rest.
              endBound = bound(this.storage.timestamp(i), this.storage.id(i));
              upper = i;
              break;
            }
            ids.bytes(this.storage.id(i));
            sent++;
          }
          o.bound(endBound);
          o.varint(Mode.IdList);
          o.varint(sent);
          o.append(ids);
          full.append(o);
          o.length = 0;
        }
      } else {
        throw new NegentropyError(`unexpected range mode ${mode}`);
      }

      if (this.exceeds(full.length + o.length)) {
        full.bound(bound(Infinity));
        full.varint(Mode.Fingerprint);
        full.bytes(this.storage.fingerprint(upper, size));
        break;
      }
      full.append(o);
      prevIndex = upper;
      prevBound = currBound;
    }
    const output = full.length === 1 && this.initiator ? null : full.result();
    return { output, have, need };
  }

  private exceeds(n: number): boolean {
    return this.frameSizeLimit !== 0 && n > this.frameSizeLimit - 200;
  }

  private splitRange(lower: number, upper: number, upperBound: Bound, o: Writer): void {
    const count = upper - lower;
    if (count < BUCKETS * 2) {
      o.bound(upperBound);
      o.varint(Mode.IdList);
      o.varint(count);
      for (let i = lower; i < upper; i++) o.bytes(this.storage.id(i));
      return;
    }
    const perBucket = Math.floor(count / BUCKETS);
    const withExtra = count % BUCKETS;
    let curr = lower;
    for (let i = 0; i < BUCKETS; i++) {
      const bucketSize = perBucket + (i < withExtra ? 1 : 0);
      const fp = this.storage.fingerprint(curr, curr + bucketSize);
      curr += bucketSize;
      o.bound(curr === upper ? upperBound : this.minimalBound(curr - 1, curr));
      o.varint(Mode.Fingerprint);
      o.bytes(fp);
    }
  }

  /** The shortest bound that separates record prev from record curr. */
  private minimalBound(prev: number, curr: number): Bound {
    const ts = this.storage.timestamp(curr);
    if (ts !== this.storage.timestamp(prev)) return bound(ts);
    const a = this.storage.id(prev);
    const b = this.storage.id(curr);
    let shared = 0;
    while (shared < ID_SIZE && a[shared] === b[shared]) shared++;
    return bound(ts, b.subarray(0, shared + 1));
  }
}

import type { Filter } from '../nostr/filter.js';
import { bound, fromHex, Mode, PROTOCOL_VERSION, toHex, Writer } from './encoding.js';
import { Reconciler } from './reconcile.js';
import type { NegentropyVector } from './storage.js';

/** How the initiator talks to the responder: send a frame, wait for the next NEG-MSG/NEG-ERR of a session. */
export interface NegentropyChannel {
  send(frame: unknown[]): void;
  next(subId: string, timeoutMs: number): Promise<unknown[]>;
}

export interface InitiatorResult {
  /** Ids we have and the responder lacks. */
  have: string[];
  /** Ids the responder has and we lack. */
  need: string[];
  /** NEG-MSG round trips. */
  rounds: number;
}

/** The responder answered NEG-ERR; `reason` is its text (e.g. `blocked: too many records ...`). */
export class NegentropyRemoteError extends Error {
  constructor(readonly reason: string) {
    super(`responder refused: ${reason}`);
  }
}

/**
 * A set known by its fingerprint only, loaded if the responder finds a difference. The first message is one
 * range over everything: equal sets end after one round trip without either side's records in memory.
 */
export interface SummarisedSet {
  count: number;
  fingerprint: Uint8Array;
  load(): Promise<NegentropyVector>;
}

/** The initiator's first message for a set known by its fingerprint: one Fingerprint range up to infinity. */
export function wholeSetMessage(fingerprint: Uint8Array): Uint8Array {
  const out = new Writer();
  out.byte(PROTOCOL_VERSION);
  out.bound(bound(Infinity));
  out.varint(Mode.Fingerprint);
  out.bytes(fingerprint);
  return out.result();
}

/** A channel's `next` found no frame within its timeout (the link is still up). */
export class NegentropyTimeoutError extends Error {}

/**
 * The responder does not speak NIP-77: our NEG-OPEN got a NOTICE or CLOSED instead of NEG-MSG/NEG-ERR
 * (`refused`), or no answer at all within the open timeout (`timeout`). Callers fall back to something else.
 */
export class NegentropyUnsupportedError extends Error {
  constructor(readonly reason: 'refused' | 'timeout', message: string) {
    super(message);
  }
}

/**
 * Runs one NIP-77 reconciliation as the initiator against a relay and returns what each side lacks. Only ids
 * are learned here; the caller moves the events (REQ {ids} down, EVENT up). `frameSizeLimit` keeps our
 * messages under the responder's message size limit (hex doubles the size).
 */
export async function reconcileWith(
  channel: NegentropyChannel,
  storage: NegentropyVector | SummarisedSet,
  filter: Filter,
  options: { subId: string; frameSizeLimit: number; timeoutMs: number; openTimeoutMs?: number },
): Promise<InitiatorResult> {
  let reconciler = 'load' in storage ? null : new Reconciler(storage, true, options.frameSizeLimit);
  const first = reconciler ? reconciler.initiate() : wholeSetMessage((storage as SummarisedSet).fingerprint);
  const have: string[] = [];
  const need: string[] = [];
  let rounds = 0;
  const wireFilter: Record<string, unknown> = { ...filter };
  delete wireFilter.tags;
  for (const [letter, values] of Object.entries(filter.tags ?? {})) wireFilter[`#${letter}`] = values;
  channel.send(['NEG-OPEN', options.subId, wireFilter, toHex(first)]);
  try {
    for (;;) {
      const frame = rounds === 0 ? await firstAnswer(channel, options.subId, options.openTimeoutMs ?? options.timeoutMs) : await channel.next(options.subId, options.timeoutMs);
      if (frame[0] === 'NEG-ERR') throw new NegentropyRemoteError(String(frame[2]).slice(0, 200));
      if (frame[0] !== 'NEG-MSG') throw new NegentropyUnsupportedError('refused', `NEG-OPEN answered with ${String(frame[0]).slice(0, 20)}: ${String(frame[frame[0] === 'CLOSED' ? 2 : 1]).slice(0, 200)}`);
      rounds++;
      const answer = fromHex(String(frame[2]));
      // Only the version byte: every range matched, nothing to load.
      if (!reconciler && answer.length === 1 && answer[0] === PROTOCOL_VERSION) return { have, need, rounds };
      reconciler ??= new Reconciler(await (storage as SummarisedSet).load(), true, options.frameSizeLimit);
      const result = reconciler.reconcile(answer);
      have.push(...result.have);
      need.push(...result.need);
      if (result.output === null) return { have, need, rounds };
      channel.send(['NEG-MSG', options.subId, toHex(result.output)]);
    }
  } finally {
    channel.send(['NEG-CLOSE', options.subId]);
  }
}

/** The answer to NEG-OPEN; silence for `timeoutMs` (while the link stays up) means the responder lacks NIP-77. */
async function firstAnswer(channel: NegentropyChannel, subId: string, timeoutMs: number): Promise<unknown[]> {
  try {
    return await channel.next(subId, timeoutMs);
  } catch (err) {
    if (err instanceof NegentropyTimeoutError) throw new NegentropyUnsupportedError('timeout', `no answer to NEG-OPEN within ${timeoutMs} ms`);
    throw err;
  }
}

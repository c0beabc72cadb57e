/**
 * What a fault on a link is: the input the API and profiles give (FaultInput), checked into an ActiveFault.
 * Every check of a fault's fields lives here, so the API, profiles and updates refuse the same things the same way.
 */
import type net from 'node:net';
import type { Attributes, Direction, FaultType, Protocol, Stream } from '../faults/contract.js';
import { FaultError, getFaultType, resolveAttributes } from '../faults/index.js';
import { MAX_TIMER_MS } from '../units.js';

export const STREAMS: readonly Stream[] = ['upstream', 'downstream', 'both'];

export interface FaultInput {
  name?: string;
  type: string;
  stream?: string;
  toxicity?: number;
  attributes?: Record<string, unknown>;
  /** ms after which the fault removes itself. */
  duration?: number;
  /** Who added it: "api" or "profile:<name>". */
  source?: string;
}

export interface ActiveFault {
  name: string;
  type: string;
  def: FaultType;
  stream: Stream;
  toxicity: number;
  attributes: Attributes;
  duration?: number;
  source: string;
  addedAt: number;
  /** Order of addition, to tell faults added after a connection was accepted. */
  epoch: number;
  expiresAt?: number;
  timer?: NodeJS.Timeout;
  fired: number;
  blackholed: Set<net.Socket>;
}

/** Check a fault input for a link of this protocol; epoch is its place in the order of addition. */
export function buildActiveFault(input: FaultInput, protocol: Protocol, epoch: number): ActiveFault {
  if (!input || typeof input !== 'object') throw new FaultError('toxic must be an object');
  if (typeof input.type !== 'string' || !input.type) throw new FaultError('missing required field: type');
  const def = getFaultType(input.type);
  if (!def) throw new FaultError(`unknown toxic type: ${input.type}`);
  const stream = (input.stream ?? def.fixedStream ?? 'downstream') as Stream;
  if (!STREAMS.includes(stream)) throw new FaultError(`unknown stream: ${input.stream} (upstream, downstream or both)`);
  const toxicity = input.toxicity ?? 1;
  if (typeof toxicity !== 'number' || !(toxicity >= 0 && toxicity <= 1)) throw new FaultError('toxicity must be a number from 0 to 1');
  if (input.duration !== undefined && !(typeof input.duration === 'number' && input.duration > 0 && input.duration <= MAX_TIMER_MS)) {
    throw new FaultError(`duration must be a number of milliseconds above 0 and at most ${MAX_TIMER_MS}, got ${JSON.stringify(input.duration)}`);
  }
  const f: ActiveFault = {
    name: input.name || `${def.type}_${stream}`,
    type: def.type,
    def,
    stream,
    toxicity,
    attributes: resolveAttributes(def, input.attributes, protocol),
    source: input.source ?? 'api',
    addedAt: Date.now(),
    epoch,
    fired: 0,
    blackholed: new Set(),
  };
  if (input.duration !== undefined) f.duration = input.duration;
  return f;
}

/** The directions a fault acts on (a fixed stream, like redis_error's, wins over the one asked). */
export function directionsOf(f: ActiveFault): Direction[] {
  const s = f.def.fixedStream ?? f.stream;
  return s === 'both' ? ['upstream', 'downstream'] : [s];
}

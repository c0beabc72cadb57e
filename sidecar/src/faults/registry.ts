/**
 * The fault registry: each file in faults/ registers its type here, as
 * Toxiproxy's toxics do; adding a fault is adding a file (and one import line
 * in faults/index.ts). Attribute validation lives here so every fault gets
 * the same errors.
 */
import type { Attributes, FaultType, Protocol } from './contract.js';
import { MAX_TIMER_MS, parseDurationMs, parseRateKBps } from '../units.js';

const types = new Map<string, FaultType>();
const aliases = new Map<string, string>();

export function registerFault(def: FaultType, ...aliasNames: string[]): void {
  if (types.has(def.type)) throw new Error(`fault type ${def.type} registered twice`);
  types.set(def.type, def);
  for (const a of aliasNames) aliases.set(a, def.type);
}

export function getFaultType(name: string): FaultType | undefined {
  return types.get(aliases.get(name) ?? name);
}

export function listFaultTypes(): FaultType[] {
  return [...types.values()];
}

/** An error that maps to an HTTP status (400 by default). */
export class FaultError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

/**
 * Merge given attributes over defaults and check them. Unknown attributes are
 * errors: a typo must not silently become a no-op fault.
 */
export function resolveAttributes(def: FaultType, given: Record<string, unknown> | undefined, protocol?: Protocol): Attributes {
  if (protocol && !def.protocols.includes(protocol)) {
    throw new FaultError(`fault type ${def.type} does not work on ${protocol} links (only ${def.protocols.join(', ')})`);
  }
  const out: Attributes = {};
  const src = given ?? {};
  if (typeof src !== 'object' || Array.isArray(src)) throw new FaultError('attributes must be an object');
  for (const key of Object.keys(src)) {
    if (!(key in def.attributes)) {
      throw new FaultError(`unknown attribute "${key}" for fault type ${def.type} (known: ${Object.keys(def.attributes).join(', ') || 'none'})`);
    }
  }
  for (const [key, spec] of Object.entries(def.attributes)) {
    let v = (src as Record<string, unknown>)[key];
    if (v === undefined || v === null) {
      out[key] = spec.default;
      continue;
    }
    try {
      if (spec.type === 'number') {
        if (typeof v === 'string' && spec.unit === 'duration') v = parseDurationMs(v);
        else if (typeof v === 'string' && spec.unit === 'us-duration') v = parseDurationMs(v) * 1000;
        else if (typeof v === 'string' && spec.unit === 'rate') v = parseRateKBps(v);
        else if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`expected a number, got ${JSON.stringify(v)}`);
        if (spec.min !== undefined && v < spec.min) throw new Error(`must be >= ${spec.min}, got ${v}`);
        if (spec.max !== undefined && v > spec.max) throw new Error(`must be <= ${spec.max}, got ${v}`);
        // Durations become timers: 2^31 ms and more would fire after 1 ms.
        if (spec.unit === 'duration' && v > MAX_TIMER_MS) throw new Error(`must be at most ${MAX_TIMER_MS} ms (longer timers overflow), got ${v}`);
        if (spec.unit === 'us-duration' && v > MAX_TIMER_MS * 1000) throw new Error(`must be at most ${MAX_TIMER_MS * 1000} µs (longer timers overflow), got ${v}`);
      } else if (spec.type === 'string') {
        if (typeof v === 'number') v = String(v);
        if (typeof v !== 'string') throw new Error(`expected a string, got ${JSON.stringify(v)}`);
        if (spec.oneOf && !spec.oneOf.includes(v)) throw new Error(`must be one of ${spec.oneOf.join(', ')}, got ${JSON.stringify(v)}`);
      } else if (typeof v !== 'boolean') {
        throw new Error(`expected true or false, got ${JSON.stringify(v)}`);
      }
    } catch (err) {
      throw new FaultError(`attribute "${key}" of ${def.type}: ${(err as Error).message}`);
    }
    out[key] = v as number | string | boolean;
  }
  return out;
}

/**
 * Validation of the console's POST bodies. Every body is hostile until checked: an object with only known fields,
 * strings of bounded length from a small alphabet, node and link names that exist in this cluster, numbers in range.
 * A failure is a BadRequest (400) whose message names the field, so curl users see what to fix.
 */
import { SHAPES, type Shape } from '../chaos/shapes.js';
import type { ClusterLayout, NodeLayout } from '../layout.js';

export class BadRequest extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

export type Body = Record<string, unknown>;

/** A JSON object with no fields outside `known` (extra fields are usually typos; refuse them instead of ignoring). */
export function object(body: unknown, known: string[]): Body {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('body must be a JSON object');
  for (const k of Object.keys(body)) if (!known.includes(k)) throw new BadRequest(`unknown field: ${k.slice(0, 40)} (known: ${known.join(', ')})`);
  return body as Body;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

export function name(b: Body, field: string, required: true): string;
export function name(b: Body, field: string, required?: boolean): string | undefined;
export function name(b: Body, field: string, required = false): string | undefined {
  const v = b[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw new BadRequest(`missing required field: ${field}`);
    return undefined;
  }
  if (typeof v !== 'string' || !NAME.test(v)) throw new BadRequest(`${field} must be a name (letters, digits, - and _, at most 63)`);
  return v;
}

export function oneOf<T extends string>(b: Body, field: string, choices: readonly T[], fallback?: T): T {
  const v = b[field];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new BadRequest(`missing required field: ${field} (one of ${choices.join(', ')})`);
    return fallback;
  }
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw new BadRequest(`${field} must be one of ${choices.join(', ')}`);
  return v as T;
}

export function bool(b: Body, field: string): boolean {
  const v = b[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new BadRequest(`${field} must be true or false`);
  return v;
}

export function integer(b: Body, field: string, min: number, max: number): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new BadRequest(`${field} must be a whole number from ${min} to ${max}`);
  return v;
}

export function node(layout: ClusterLayout, value: unknown, field = 'node'): NodeLayout {
  const wanted = typeof value === 'string' ? value.replace(/^relay-/, '') : undefined;
  const n = layout.nodes.find((x) => x.name === wanted);
  if (!n) throw new BadRequest(`${field} must be one of ${layout.nodes.map((x) => x.name).join(', ')}`);
  return n;
}

/** A list of distinct node names of this cluster (absent: undefined, meaning all). */
export function nodes(layout: ClusterLayout, b: Body, field: string): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > layout.nodes.length) throw new BadRequest(`${field} must be a list of at most ${layout.nodes.length} node names`);
  const out = v.map((x) => node(layout, x, field).name);
  if (new Set(out).size !== out.length) throw new BadRequest(`${field} names a node twice`);
  return out;
}

export function link(n: NodeLayout, value: unknown): string {
  const l = typeof value === 'string' ? n.links.find((x) => x.name === value) : undefined;
  if (!l) throw new BadRequest(`link must be one of node ${n.name}'s links: ${n.links.map((x) => x.name).join(', ')}`);
  return l.name;
}

export function shape(b: Body): Shape {
  return oneOf(b, 'shape', SHAPES);
}

/** Groups as [["a","b"],["c"]]: at least two, nodes of this cluster, none twice (planPartition checks the rest). */
export function groups(layout: ClusterLayout, b: Body): string[][] | undefined {
  const v = b.groups;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length < 2 || v.length > layout.nodes.length) throw new BadRequest(`groups must be a list of 2 to ${layout.nodes.length} lists of node names`);
  const out = v.map((g) => {
    if (!Array.isArray(g) || g.length === 0) throw new BadRequest('each group must be a non-empty list of node names');
    return g.map((x) => node(layout, x, 'groups').name);
  });
  const all = out.flat();
  if (new Set(all).size !== all.length) throw new BadRequest('a node appears in two groups');
  return out;
}

/** Fault attributes: a flat object of at most 16 numbers, strings (≤ 200 chars) or booleans; the sidecar checks meaning. */
export function attributes(b: Body): Record<string, number | string | boolean> | undefined {
  const v = b.attributes;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new BadRequest('attributes must be an object');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 16) throw new BadRequest('attributes: at most 16 entries');
  const out: Record<string, number | string | boolean> = {};
  for (const [k, x] of entries) {
    if (!NAME.test(k)) throw new BadRequest(`attributes: bad name ${k.slice(0, 40)}`);
    if (typeof x === 'number' ? !Number.isFinite(x) : typeof x === 'string' ? x.length > 200 : typeof x !== 'boolean') {
      throw new BadRequest(`attributes.${k} must be a finite number, a string of at most 200 characters, or a boolean`);
    }
    out[k] = x as number | string | boolean;
  }
  return out;
}

/**
 * Chaos profile format: parsing, validation (file:line: field: reason, unknown
 * keys are errors) and compilation of each entry into our fault inputs.
 *
 *   name: db-outage
 *   description: ...
 *   faults:              # shorthand for one step starting at once, lasting until cleared
 *     - link: postgres
 *       action: partition
 *   steps:               # or a schedule
 *     - at: 10s          # offset from apply
 *       duration: 20s    # optional; none = until cleared
 *       every: 60s       # optional: repeat interval (from the start of a run)
 *       repeat: 3        # optional: number of runs (default: forever when `every` is set)
 *       faults: [...]
 *
 * A fault entry speaks Chaos Mesh (action, direction, delay/loss/corrupt/
 * duplicate/bandwidth blocks) or Toxiproxy (type, stream, toxicity,
 * attributes), plus `link` (exact name, glob like peer-*, or a list),
 * optional `nodes` and optional `duration`.
 */
import type { FaultInput } from '../links/link.js';
import { getFaultType, resolveAttributes } from '../faults/index.js';
import { parseDurationMs, parsePercent, parseRateKBps, parseTimerMs } from '../units.js';
import { YamlSource, type Path } from '../yaml-source.js';

export interface ProfileFault {
  links: string[];
  nodes?: string[];
  input: FaultInput;
}

export interface ProfileStep {
  at: number;
  duration?: number;
  every?: number;
  repeat?: number;
  faults: ProfileFault[];
}

export interface Profile {
  name: string;
  description: string;
  file: string;
  steps: ProfileStep[];
}

const ACTIONS: Record<string, { type: string; block?: string }> = {
  delay: { type: 'latency', block: 'delay' },
  loss: { type: 'loss', block: 'loss' },
  duplicate: { type: 'duplicate', block: 'duplicate' },
  corrupt: { type: 'corrupt', block: 'corrupt' },
  partition: { type: 'partition' },
  bandwidth: { type: 'bandwidth', block: 'bandwidth' },
};
const BLOCKS = ['delay', 'loss', 'duplicate', 'corrupt', 'bandwidth'];
const DIRECTIONS: Record<string, string> = { to: 'upstream', from: 'downstream', both: 'both' };
const FAULT_KEYS = ['name', 'link', 'nodes', 'action', 'type', 'direction', 'stream', 'toxicity', 'attributes', 'duration', ...BLOCKS];

function stringList(src: YamlSource, path: Path, v: unknown): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && x.length > 0)) {
    src.fail(path, 'expected a name or a non-empty list of names');
  }
  return list as string[];
}

/** Attributes from a Chaos Mesh block (delay: {latency, jitter, correlation} ...). */
function blockAttributes(src: YamlSource, path: Path, action: string, block: unknown): Record<string, unknown> {
  const at = (k: string) => [...path, k];
  switch (action) {
    case 'delay': {
      const b = src.object(path, block, ['latency', 'jitter', 'correlation']);
      const out: Record<string, unknown> = {};
      if (b.latency !== undefined) out.latency = src.check(at('latency'), () => parseDurationMs(b.latency));
      if (b.jitter !== undefined) out.jitter = src.check(at('jitter'), () => parseDurationMs(b.jitter));
      // Chaos Mesh's delay correlation ties successive delays; we keep order, so it is accepted and checked only.
      if (b.correlation !== undefined) src.check(at('correlation'), () => parsePercent(b.correlation));
      return out;
    }
    case 'loss': {
      const b = src.object(path, block, ['loss', 'correlation']);
      const out: Record<string, unknown> = {};
      if (b.loss !== undefined) out.probability = src.check(at('loss'), () => parsePercent(b.loss));
      if (b.correlation !== undefined) out.correlation = src.check(at('correlation'), () => parsePercent(b.correlation));
      return out;
    }
    case 'duplicate': {
      const b = src.object(path, block, ['duplicate', 'correlation']);
      if (b.correlation !== undefined) src.check(at('correlation'), () => parsePercent(b.correlation));
      return b.duplicate !== undefined ? { probability: src.check(at('duplicate'), () => parsePercent(b.duplicate)) } : {};
    }
    case 'corrupt': {
      const b = src.object(path, block, ['corrupt', 'correlation']);
      if (b.correlation !== undefined) src.check(at('correlation'), () => parsePercent(b.correlation));
      return b.corrupt !== undefined ? { probability: src.check(at('corrupt'), () => parsePercent(b.corrupt)) } : {};
    }
    case 'bandwidth': {
      // limit and buffer are tc queue sizes; a userland proxy has no such queue, so they are accepted and ignored.
      const b = src.object(path, block, ['rate', 'limit', 'buffer']);
      return b.rate !== undefined ? { rate: src.check(at('rate'), () => parseRateKBps(b.rate)) } : {};
    }
    default:
      return {};
  }
}

function parseFault(src: YamlSource, path: Path, raw: unknown, profile: string, defaultName: string): ProfileFault {
  const e = src.object(path, raw, FAULT_KEYS);
  if (e.link === undefined) src.fail(path, 'missing required key "link"');
  const links = stringList(src, [...path, 'link'], e.link);
  const out: ProfileFault = { links, input: { type: '' } };
  if (e.nodes !== undefined) out.nodes = stringList(src, [...path, 'nodes'], e.nodes);

  if ((e.action === undefined) === (e.type === undefined)) src.fail(path, 'give exactly one of "action" (Chaos Mesh) or "type" (fault type)');
  let type: string;
  let attrs: Record<string, unknown> = {};
  let defaultStream: string;
  if (e.action !== undefined) {
    const a = ACTIONS[String(e.action)];
    if (!a) src.fail([...path, 'action'], `unknown action ${JSON.stringify(e.action)} (known: ${Object.keys(ACTIONS).join(', ')})`);
    type = a.type;
    defaultStream = 'upstream'; // Chaos Mesh's default direction is "to"
    for (const b of BLOCKS) {
      if (e[b] !== undefined && b !== a.block) src.fail([...path, b], `block "${b}" does not belong to action ${String(e.action)}`);
    }
    if (a.block && e[a.block] !== undefined) attrs = blockAttributes(src, [...path, a.block], String(e.action), e[a.block]);
  } else {
    if (typeof e.type !== 'string' || !getFaultType(e.type)) src.fail([...path, 'type'], `unknown fault type ${JSON.stringify(e.type)}`);
    type = getFaultType(e.type)!.type;
    defaultStream = 'downstream'; // Toxiproxy's default stream
    for (const b of BLOCKS) if (e[b] !== undefined) src.fail([...path, b], `block "${b}" goes with "action", use "attributes" with "type"`);
  }
  if (e.attributes !== undefined) {
    const a = src.object([...path, 'attributes'], e.attributes, Object.keys(getFaultType(type)!.attributes));
    attrs = { ...attrs, ...a };
  }
  const resolved = src.check([...path, e.attributes !== undefined ? 'attributes' : e.action !== undefined ? 'action' : 'type'], () =>
    resolveAttributes(getFaultType(type)!, attrs),
  );

  if (e.direction !== undefined && e.stream !== undefined) src.fail([...path, 'stream'], 'give "direction" or "stream", not both');
  let stream = defaultStream;
  if (e.direction !== undefined) {
    const s = DIRECTIONS[String(e.direction)];
    if (!s) src.fail([...path, 'direction'], 'expected to, from or both');
    stream = s;
  } else if (e.stream !== undefined) {
    if (!['upstream', 'downstream', 'both'].includes(String(e.stream))) src.fail([...path, 'stream'], 'expected upstream, downstream or both');
    stream = String(e.stream);
  }
  let toxicity = 1;
  if (e.toxicity !== undefined) {
    if (typeof e.toxicity !== 'number' || e.toxicity < 0 || e.toxicity > 1) src.fail([...path, 'toxicity'], 'expected a number from 0 to 1');
    toxicity = e.toxicity;
  }
  if (e.name !== undefined && (typeof e.name !== 'string' || !/^[\w.-]+$/.test(e.name))) src.fail([...path, 'name'], 'expected a name of letters, digits, ".", "_" or "-"');
  out.input = {
    name: (e.name as string | undefined) ?? `${profile}.${defaultName}`,
    type,
    stream,
    toxicity,
    attributes: resolved,
    source: `profile:${profile}`,
  };
  if (e.duration !== undefined) {
    const d = src.check([...path, 'duration'], () => parseTimerMs(e.duration));
    if (d <= 0) src.fail([...path, 'duration'], 'must be positive');
    out.input.duration = d;
  }
  return out;
}

function parseFaultList(src: YamlSource, path: Path, v: unknown, profile: string, prefix: string): ProfileFault[] {
  if (!Array.isArray(v) || v.length === 0) src.fail(path, 'expected a non-empty list of faults');
  return v.map((f, i) => parseFault(src, [...path, i], f, profile, `${prefix}${i}`));
}

export function parseProfile(text: string, file: string, fallbackName: string): Profile {
  const src = YamlSource.parse(text, file);
  // `hypothesis` is the experiment runner's (cluster/src/experiment/hypothesis.ts validates it); the sidecar ignores it.
  const doc = src.object([], src.value(), ['name', 'description', 'faults', 'steps', 'hypothesis']);
  if (doc.name !== undefined && (typeof doc.name !== 'string' || !/^[\w.-]+$/.test(doc.name))) src.fail(['name'], 'expected a name of letters, digits, ".", "_" or "-"');
  const name = (doc.name as string | undefined) ?? fallbackName;
  if (doc.description !== undefined && typeof doc.description !== 'string') src.fail(['description'], 'expected a string');
  if ((doc.faults === undefined) === (doc.steps === undefined)) src.fail([], 'give exactly one of "faults" or "steps"');
  const steps: ProfileStep[] = [];
  if (doc.faults !== undefined) {
    steps.push({ at: 0, faults: parseFaultList(src, ['faults'], doc.faults, name, '') });
  } else {
    if (!Array.isArray(doc.steps) || doc.steps.length === 0) src.fail(['steps'], 'expected a non-empty list of steps');
    (doc.steps as unknown[]).forEach((raw, i) => {
      const path: Path = ['steps', i];
      const s = src.object(path, raw, ['at', 'duration', 'every', 'repeat', 'faults']);
      const step: ProfileStep = {
        at: s.at === undefined ? 0 : src.check([...path, 'at'], () => parseTimerMs(s.at)),
        faults: parseFaultList(src, [...path, 'faults'], s.faults, name, `${i}.`),
      };
      if (s.duration !== undefined) step.duration = src.check([...path, 'duration'], () => parseTimerMs(s.duration));
      if (s.every !== undefined) {
        // Chaos Mesh writes intervals as "@every 5s"; both spellings are accepted.
        step.every = src.check([...path, 'every'], () => parseTimerMs(typeof s.every === 'string' ? s.every.replace(/^@every\s+/, '') : s.every));
        if (step.duration === undefined) src.fail([...path, 'every'], 'a repeating step needs a duration');
        if (step.every <= (step.duration ?? 0)) src.fail([...path, 'every'], 'must be longer than duration');
      }
      if (s.repeat !== undefined) {
        if (!Number.isInteger(s.repeat) || (s.repeat as number) < 1) src.fail([...path, 'repeat'], 'expected a whole number >= 1');
        if (step.every === undefined) src.fail([...path, 'repeat'], 'repeat needs "every"');
        step.repeat = s.repeat as number;
      }
      steps.push(step);
    });
  }
  // Names must be unique within the profile: they become fault names on the links.
  const seen = new Map<string, number>();
  steps.forEach((s, i) => s.faults.forEach((f) => {
    const prev = seen.get(f.input.name!);
    if (prev !== undefined && prev !== i) src.fail(['steps', i], `fault name ${f.input.name} used in two steps`);
    seen.set(f.input.name!, i);
  }));
  return { name, description: (doc.description as string | undefined) ?? '', file, steps };
}

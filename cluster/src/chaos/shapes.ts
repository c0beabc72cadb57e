/**
 * Cluster-level partitions (Jepsen's nemesis shapes) compiled into per-sidecar link faults: "x cannot reach y"
 * becomes a partition fault on sidecar-x's link `peer-y`. The result is one profile in the sidecar's format whose
 * entries carry a `nodes:` selector, so the same document can be pushed to every sidecar.
 */
import { stringify } from 'yaml';

export const SHAPES = ['isolate', 'halves', 'bridge', 'majorities-ring', 'groups'] as const;
export type Shape = (typeof SHAPES)[number];

export interface PartitionPlan {
  shape: Shape;
  existing: 'freeze' | 'reset';
  description: string;
  /** Ordered pairs [from, to]: `from` cannot reach `to` over its peer link. */
  blocked: Array<[string, string]>;
  /** The components, as the operator would draw them. */
  groups: string[][];
}

export interface ShapeOptions {
  /** For isolate: the node cut off (default the first). */
  node?: string;
  /** For groups: e.g. [["a","b"],["c"]]. */
  groups?: string[][];
  /** Only the first group loses its outbound links (a one-way partition). */
  oneWay?: boolean;
  /** What open peer connections get: held until the heal (freeze, like a silent network) or reset (like a REJECT). */
  existing?: 'freeze' | 'reset';
}

function across(groups: string[][], oneWay: boolean): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  groups.forEach((g, i) => {
    groups.forEach((h, j) => {
      if (i === j || (oneWay && i !== 0)) return;
      for (const x of g) for (const y of h) out.push([x, y]);
    });
  });
  return out;
}

export function parseGroups(text: string): string[][] {
  const groups = text.split(/[/|]/).map((g) => g.split(',').map((s) => s.trim().replace(/^relay-/, '')).filter(Boolean)).filter((g) => g.length > 0);
  if (groups.length < 2) throw new Error(`groups must name at least two groups, e.g. "a,b/c" (got ${JSON.stringify(text)})`);
  return groups;
}

export function planPartition(shape: Shape, nodes: string[], o: ShapeOptions = {}): PartitionPlan {
  return { ...planShape(shape, nodes, o), existing: o.existing ?? 'freeze' };
}

function planShape(shape: Shape, nodes: string[], o: ShapeOptions): Omit<PartitionPlan, 'existing'> {
  if (nodes.length < 2) throw new Error('a partition needs at least two nodes');
  const oneWay = o.oneWay ?? false;
  const dir = oneWay ? 'one-way' : 'two-way';
  switch (shape) {
    case 'isolate': {
      const x = (o.node ?? nodes[0]!).replace(/^relay-/, '');
      if (!nodes.includes(x)) throw new Error(`no node ${x} (nodes: ${nodes.join(', ')})`);
      const groups = [[x], nodes.filter((n) => n !== x)];
      return { shape, groups, blocked: across(groups, oneWay), description: `${dir}: ${x} isolated from ${groups[1]!.join(',')}` };
    }
    case 'halves': {
      const cut = Math.ceil(nodes.length / 2);
      const groups = [nodes.slice(0, cut), nodes.slice(cut)];
      return { shape, groups, blocked: across(groups, oneWay), description: `${dir}: halves ${groups.map((g) => g.join(',')).join(' | ')}` };
    }
    case 'bridge': {
      if (nodes.length < 3) throw new Error('bridge needs at least three nodes (start the cluster with NODES=3 or more)');
      const mid = Math.floor(nodes.length / 2);
      const left = nodes.slice(0, mid);
      const right = nodes.slice(mid + 1);
      const blocked = across([left, right], oneWay);
      return { shape, groups: [left, [nodes[mid]!], right], blocked, description: `${dir}: ${left.join(',')} | ${right.join(',')}, bridged by ${nodes[mid]} which sees both` };
    }
    case 'majorities-ring': {
      if (nodes.length < 4) throw new Error('majorities-ring needs at least four nodes (with three, every node already sees a majority of its own; use halves)');
      const n = nodes.length;
      const majority = Math.floor(n / 2) + 1;
      const reach = Math.floor(majority / 2);
      const blocked: Array<[string, string]> = [];
      const groups: string[][] = [];
      nodes.forEach((x, i) => {
        const sees: string[] = [];
        nodes.forEach((y, j) => {
          const d = Math.min(Math.abs(i - j), n - Math.abs(i - j));
          if (d <= reach) sees.push(y);
          else blocked.push([x, y]);
        });
        groups.push(sees);
      });
      return { shape, groups, blocked, description: `each node sees a majority (${majority}) of its ring neighbours, no two the same majority` };
    }
    case 'groups': {
      if (!o.groups) throw new Error('shape groups needs --groups, e.g. --groups a,b/c');
      const named = o.groups.flat();
      for (const x of named) if (!nodes.includes(x)) throw new Error(`no node ${x} (nodes: ${nodes.join(', ')})`);
      if (new Set(named).size !== named.length) throw new Error('a node appears in two groups');
      return { shape, groups: o.groups, blocked: across(o.groups, oneWay), description: `${dir}: ${o.groups.map((g) => g.join(',')).join(' | ')}` };
    }
  }
}

/** The sidecar profile for a plan; with a duration the sidecars heal by themselves when it ends. */
export function partitionProfileYaml(plan: PartitionPlan, durationMs?: number): string {
  const faults = plan.blocked.map(([from, to]) => ({
    name: `partition-${from}-${to}`,
    link: `peer-${to}`,
    nodes: [from],
    action: 'partition',
    direction: 'both',
    attributes: { new: 'refuse', existing: plan.existing },
  }));
  const doc: Record<string, unknown> = { name: `partition-${plan.shape}`, description: plan.description };
  if (durationMs !== undefined) doc.steps = [{ at: '0s', duration: `${Math.round(durationMs)}ms`, faults }];
  else doc.faults = faults;
  return stringify(doc);
}

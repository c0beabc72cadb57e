/**
 * The console's steering actions: each validates its body, then calls the code the CLI calls (chaos/apply.ts,
 * chaos/shapes.ts, chaos/sidecar-client.ts, the experiment runner), so the page, curl and `chaos ...` do one thing.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { applyToCluster, loadProfileSource, resetCluster } from '../chaos/apply.js';
import { partitionProfileYaml, planPartition, SHAPES } from '../chaos/shapes.js';
import { addFault, removeFault } from '../chaos/sidecar-client.js';
import { tryGet } from '../http.js';
import { directEndpoints, type ClusterLayout } from '../layout.js';
import type { ExperimentControl } from './experiments.js';
import * as v from './validate.js';

const DAY_MS = 24 * 3600_000;

/** chaos-profiles/*.yaml by name: the only profiles the console applies (never a path from a request). */
export function profileNames(root: string): string[] {
  const dir = join(root, 'chaos-profiles');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^[a-z0-9-]+\.ya?ml$/.test(f)).map((f) => f.replace(/\.ya?ml$/, '')).sort();
}

export class Actions {
  constructor(private readonly layout: ClusterLayout, private readonly experiments: ExperimentControl) {}

  private names(): string[] {
    return this.layout.nodes.map((n) => n.name);
  }

  /** What the page needs to draw its forms: nodes and links, profiles, shapes, the sidecars' fault types. */
  async meta() {
    const types = await tryGet<Array<{ type?: unknown }>>(`${directEndpoints(this.layout, this.layout.nodes[0]!).sidecarUrl}/fault-types`);
    return {
      faultTypes: Array.isArray(types?.body) ? types.body.map((t) => String(t.type)) : ['partition', 'latency'],
      nodes: this.layout.nodes.map((n) => ({ name: n.name, links: n.links.map((l) => ({ name: l.name, protocol: l.protocol })) })),
      profiles: profileNames(this.layout.root),
      shapes: SHAPES,
      experimentProfiles: [...profileNames(this.layout.root), 'crash'],
    };
  }

  /** `chaos apply PROFILE --nodes ...`. */
  async applyProfile(body: unknown) {
    const b = v.object(body, ['profile', 'nodes']);
    const profile = v.oneOf(b, 'profile', profileNames(this.layout.root));
    const nodes = v.nodes(this.layout, b, 'nodes');
    const source = loadProfileSource(this.layout.root, profile);
    const applied = await applyToCluster(this.layout, source.yaml, nodes);
    return { applied: source.name, description: source.description, nodes: applied };
  }

  /** `chaos partition --shape ... [--groups] [--node] [--one-way] [--existing] [--duration]`. */
  async partition(body: unknown) {
    const b = v.object(body, ['shape', 'groups', 'node', 'oneWay', 'existing', 'durationMs']);
    const shape = v.shape(b);
    const groups = v.groups(this.layout, b);
    const node = b.node === undefined || b.node === null ? undefined : v.node(this.layout, b.node).name;
    const existing = v.oneOf(b, 'existing', ['freeze', 'reset'] as const, 'freeze');
    const durationMs = v.integer(b, 'durationMs', 100, DAY_MS);
    let plan;
    try {
      plan = planPartition(shape, this.names(), { node, groups, oneWay: v.bool(b, 'oneWay'), existing });
    } catch (err) {
      // The shape does not fit this cluster (bridge with two nodes, groups missing): the request is wrong.
      throw new v.BadRequest((err as Error).message);
    }
    const applied = await applyToCluster(this.layout, partitionProfileYaml(plan, durationMs));
    return { shape: plan.shape, description: plan.description, groups: plan.groups, blocked: plan.blocked, nodes: applied };
  }

  /** One fault on one link of one sidecar (Toxiproxy's POST /proxies/{link}/toxics). */
  async addFault(body: unknown) {
    const b = v.object(body, ['node', 'link', 'type', 'name', 'stream', 'toxicity', 'attributes', 'durationMs']);
    const n = v.node(this.layout, b.node);
    const link = v.link(n, b.link);
    const type = v.name(b, 'type', true);
    const stream = v.oneOf(b, 'stream', ['upstream', 'downstream', 'both'] as const, 'both');
    const toxicity = b.toxicity;
    if (toxicity !== undefined && (typeof toxicity !== 'number' || !(toxicity >= 0 && toxicity <= 1))) throw new v.BadRequest('toxicity must be a number from 0 to 1');
    const fault = await addFault(directEndpoints(this.layout, n).sidecarUrl, link, {
      type,
      stream,
      name: v.name(b, 'name'),
      toxicity: toxicity as number | undefined,
      attributes: v.attributes(b),
      duration: v.integer(b, 'durationMs', 1, DAY_MS),
    });
    return { node: n.name, link, fault };
  }

  async removeFault(body: unknown) {
    const b = v.object(body, ['node', 'link', 'name']);
    const n = v.node(this.layout, b.node);
    const link = v.link(n, b.link);
    const name = v.name(b, 'name', true);
    await removeFault(directEndpoints(this.layout, n).sidecarUrl, link, name);
    return { node: n.name, link, removed: name };
  }

  /** `chaos reset`: every sidecar's profile cleared and faults removed. */
  async heal(body: unknown) {
    v.object(body, []);
    return { healed: await resetCluster(this.layout) };
  }

  /** `chaos run PROFILE [--shape] [--groups] [--nodes] [--hold] [--rate]`, in the background. */
  startExperiment(body: unknown) {
    const b = v.object(body, ['profile', 'shape', 'groups', 'nodes', 'holdMs', 'rate']);
    const profile = v.oneOf(b, 'profile', [...profileNames(this.layout.root), 'crash']);
    const shape = b.shape === undefined || b.shape === null ? undefined : v.shape(b);
    if (shape && profile !== 'partition') throw new v.BadRequest('shape goes with profile partition');
    const groups = v.groups(this.layout, b);
    if (shape) {
      try {
        planPartition(shape, this.names(), { groups });
      } catch (err) {
        throw new v.BadRequest((err as Error).message);
      }
    }
    const nodes = v.nodes(this.layout, b, 'nodes');
    return this.experiments.start({ profile, shape, groups, nodes, holdMs: v.integer(b, 'holdMs', 1000, 600_000), rate: v.integer(b, 'rate', 1, 2000) });
  }

  stopExperiment(body: unknown) {
    v.object(body, []);
    return { stopping: this.experiments.stop() };
  }
}

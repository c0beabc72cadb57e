// Summarises a V8 .cpuprofile (node --cpu-prof): self time by component and the hottest functions, as text.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO_ROOT } from './relay-child.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

/** Where a frame's code lives: a relay/sidecar source directory, an npm package, Node's internals, or V8's pseudo-frames. */
function componentOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return `npm:${pkg[1]}`;
  if (path.startsWith('node:')) return path.split('/').slice(0, 2).join('/');
  const rel = relative(REPO_ROOT, path);
  if (!rel.startsWith('..')) return rel.split('/').slice(0, 3).join('/');
  return path;
}

export interface ProfileSummary {
  totalMs: number;
  byComponent: Array<{ component: string; ms: number; share: number }>;
  hottest: Array<{ fn: string; where: string; ms: number; share: number }>;
}

export function summariseProfile(file: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const totalMs = (p.endTime - p.startTime) / 1000;
  const perSample = totalMs / Math.max(1, p.samples.length);
  const comp = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; ms: number }>();
  for (const n of p.nodes) {
    const ms = (n.hitCount ?? 0) * perSample;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const c = componentOf(url, functionName);
    comp.set(c, (comp.get(c) ?? 0) + ms);
    const where = url ? `${c}:${lineNumber + 1}` : c;
    const key = `${functionName}@${where}`;
    const f = fns.get(key) ?? { fn: functionName || '(anonymous)', where, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
  }
  const share = (ms: number) => ms / totalMs;
  return {
    totalMs,
    byComponent: [...comp].map(([component, ms]) => ({ component, ms, share: share(ms) })).sort((a, b) => b.ms - a.ms).slice(0, top),
    hottest: [...fns.values()].map((f) => ({ ...f, share: share(f.ms) })).sort((a, b) => b.ms - a.ms).slice(0, top),
  };
}

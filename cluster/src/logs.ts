/** Reading the cluster's log files: `make logs NODE=a` and the journalctl shim of `.cluster/env.sh`. */
import { createReadStream, existsSync, readFileSync, statSync, watch } from 'node:fs';
import { paths, type ClusterLayout } from './layout.js';

export type Component = 'relay' | 'sidecar' | 'supervisor' | 'postgres' | 'redis';

export function logFiles(layout: ClusterLayout, component: Component, node?: string): string[] {
  const p = paths(layout);
  const names = node ? [node.replace(/^relay-|^sidecar-/, '')] : layout.nodes.map((n) => n.name);
  for (const n of names) {
    if (!layout.nodes.some((x) => x.name === n)) throw new Error(`no node ${n} (nodes: ${layout.nodes.map((x) => x.name).join(', ')})`);
  }
  switch (component) {
    case 'relay':
      return names.map((n) => p.relayLog(n));
    case 'sidecar':
      return names.map((n) => p.sidecarLog(n));
    case 'supervisor':
      return [p.supervisorLog];
    case 'postgres':
      return [p.pgLog];
    case 'redis':
      return [p.redisLog];
  }
}

function timeOf(line: string): number {
  if (!line.startsWith('{')) return NaN;
  try {
    const t = (JSON.parse(line) as { time?: unknown }).time;
    return typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN;
  } catch {
    return NaN;
  }
}

/** The last `lines` lines of the files, merged in time order when the lines carry pino timestamps. */
export function tail(files: string[], lines: number): string[] {
  const all: Array<{ line: string; t: number; seq: number }> = [];
  let seq = 0;
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line !== '') all.push({ line, t: timeOf(line), seq: seq++ });
    }
  }
  if (files.length > 1) all.sort((x, y) => (Number.isNaN(x.t) || Number.isNaN(y.t) ? x.seq - y.seq : x.t - y.t || x.seq - y.seq));
  return (lines > 0 ? all.slice(-lines) : all).map((x) => x.line);
}

/** Prints new lines as they are appended (like tail -f) until the process is interrupted. */
export function follow(files: string[], write: (line: string) => void): void {
  for (const file of files) {
    let offset = existsSync(file) ? statSync(file).size : 0;
    let partial = '';
    const readMore = () => {
      if (!existsSync(file)) return;
      const size = statSync(file).size;
      if (size < offset) offset = 0;
      if (size === offset) return;
      const stream = createReadStream(file, { start: offset, end: size - 1, encoding: 'utf8' });
      offset = size;
      stream.on('data', (chunk) => {
        const text = partial + String(chunk);
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const l of parts) write(l);
      });
      stream.on('error', (err) => process.stderr.write(`cannot read ${file}: ${err.message}\n`));
    };
    watch(file, { persistent: true }, readMore);
    setInterval(readMore, 1000);
  }
}

/** Maps a systemd unit name (`nostream-node`, `nostream-node@b`, `chaos-sidecar@a.service`) to log files. */
export function filesForUnit(layout: ClusterLayout, unit: string | undefined): string[] {
  if (!unit) return [...logFiles(layout, 'relay'), ...logFiles(layout, 'sidecar'), ...logFiles(layout, 'supervisor')];
  const m = /^(nostream-node|chaos-sidecar|postgresql|redis(?:-server)?)(?:@([a-z]+))?(?:\.service)?$/.exec(unit);
  if (!m) throw new Error(`unknown unit ${unit} (known: nostream-node[@NODE], chaos-sidecar[@NODE], postgresql, redis-server)`);
  const [, kind, instance] = m;
  if (kind === 'postgresql') return logFiles(layout, 'postgres');
  if (kind!.startsWith('redis')) return logFiles(layout, 'redis');
  // Without an instance, CLUSTER_NODE picks one (as the runbook's single-node commands assume); unset means every node.
  const node = instance ?? process.env.CLUSTER_NODE;
  return logFiles(layout, kind === 'nostream-node' ? 'relay' : 'sidecar', node || undefined);
}

/**
 * The timeline picture of one experiment as SVG: the fault window, one lane per node coloured by its state
 * (sampled ten times a second), the acknowledged-events throughput, and markers for fault, heal, detection,
 * recovery and convergence.
 */
import type { ExperimentResult } from '../experiment/experiment.js';
import type { Sample } from '../experiment/observer.js';

const STATE_COLOURS: Record<string, string> = {
  normal: '#3c9a5f',
  down: '#c0392b',
  degraded: '#e67e22',
  'cache-fallback': '#f1c40f',
  partitioned: '#8e44ad',
  unknown: '#bdc3c7',
};

export function stateOf(s: Sample, peers: number): string {
  if (!s.up) return 'down';
  if (s.mode !== null && s.mode !== 'normal') return 'degraded';
  if (s.partitioned === true || (s.peersUp !== null && s.peersUp < peers)) return 'partitioned';
  if (s.cache !== null && s.cache !== 'ok') return 'cache-fallback';
  if (s.mode === 'normal') return 'normal';
  return 'unknown';
}

const esc = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function timelineSvg(r: ExperimentResult): string {
  const width = 960;
  const left = 90;
  const right = 20;
  const laneH = 22;
  const top = 30;
  const plotW = width - left - right;
  const t0 = r.startedAt;
  const span = Math.max(1, r.endedAt - t0);
  const x = (t: number) => left + ((t - t0) / span) * plotW;
  const peers = r.nodes.length - 1;
  const lanesBottom = top + r.nodes.length * (laneH + 6);
  const chartTop = lanesBottom + 20;
  const chartH = 90;
  const labelsTop = chartTop + chartH + 14;
  const height = labelsTop + 3 * 13 + 40;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect x="${x(r.faultAt)}" y="${top - 14}" width="${Math.max(2, x(r.healAt) - x(r.faultAt))}" height="${chartTop + chartH - top + 14}" fill="#c0392b" fill-opacity="0.10"/>`);
  parts.push(`<text x="${x(r.faultAt) + 3}" y="${top - 4}" fill="#c0392b">${esc(r.profile)}</text>`);
  r.nodes.forEach((node, i) => {
    const y = top + i * (laneH + 6);
    parts.push(`<text x="${left - 8}" y="${y + laneH / 2 + 4}" text-anchor="end">relay-${esc(node)}</text>`);
    const samples = r.samples.filter((s) => s.node === node).sort((a, b) => a.t - b.t);
    // One rectangle per run of samples in the same state (ten samples a second would be thousands of shapes).
    let runStart = 0;
    samples.forEach((s, k) => {
      const state = stateOf(s, peers);
      const nextSample = samples[k + 1];
      if (nextSample && stateOf(nextSample, peers) === state) return;
      const from = samples[runStart]!.t;
      const to = nextSample?.t ?? r.endedAt;
      runStart = k + 1;
      parts.push(`<rect x="${x(from).toFixed(1)}" y="${y}" width="${Math.max(0.5, x(to) - x(from)).toFixed(1)}" height="${laneH}" fill="${STATE_COLOURS[state]}"><title>${esc(`${node} ${state} from +${((from - t0) / 1000).toFixed(1)} s to +${((to - t0) / 1000).toFixed(1)} s`)}</title></rect>`);
    });
  });
  // Throughput: acknowledged events per second.
  const buckets = new Map<number, number>();
  for (const a of r.acks) buckets.set(Math.floor((a.t - t0) / 1000), (buckets.get(Math.floor((a.t - t0) / 1000)) ?? 0) + 1);
  const seconds = Math.ceil(span / 1000);
  const peak = Math.max(1, ...buckets.values());
  const points: string[] = [];
  for (let sec = 0; sec <= seconds; sec++) {
    const v = buckets.get(sec) ?? 0;
    points.push(`${x(t0 + sec * 1000 + 500).toFixed(1)},${(chartTop + chartH - (v / peak) * chartH).toFixed(1)}`);
  }
  parts.push(`<rect x="${left}" y="${chartTop}" width="${plotW}" height="${chartH}" fill="none" stroke="#ccc"/>`);
  parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="#2c3e50" stroke-width="1.5"/>`);
  parts.push(`<text x="${left - 8}" y="${chartTop + 10}" text-anchor="end">${peak}/s</text>`);
  parts.push(`<text x="${left - 8}" y="${chartTop + chartH}" text-anchor="end">acks 0</text>`);
  const marks: Array<[number | null, string, string]> = [
    [r.faultAt, 'fault', '#c0392b'],
    [r.profile === 'crash' ? null : r.healAt, 'heal', '#27ae60'],
    [r.detectedAt, 'detected', '#8e44ad'],
    [r.recoveredAt, 'recovered', '#2980b9'],
    [r.syncedAt, 'synced', '#16a085'],
  ];
  marks.forEach(([t, label, colour], i) => {
    if (t === null) return;
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top - 14}" y2="${chartTop + chartH}" stroke="${colour}" stroke-dasharray="3,2"/>`);
    const anchor = x(t) > width - 160 ? 'end' : 'start';
    parts.push(`<text x="${x(t) + (anchor === 'end' ? -2 : 2)}" y="${labelsTop + (i % 3) * 13}" fill="${colour}" text-anchor="${anchor}">${label} +${((t - t0) / 1000).toFixed(1)}s</text>`);
  });
  for (let sec = 0; sec <= seconds; sec += Math.max(5, Math.ceil(seconds / 12 / 5) * 5)) {
    parts.push(`<text x="${x(t0 + sec * 1000)}" y="${labelsTop + 3 * 13}" fill="#777" text-anchor="middle">${sec}s</text>`);
  }
  const legend = Object.entries(STATE_COLOURS).map(([k, c], i) => `<rect x="${left + i * 120}" y="${height - 16}" width="10" height="10" fill="${c}"/><text x="${left + i * 120 + 14}" y="${height - 7}">${k}</text>`);
  parts.push(...legend);
  parts.push('</svg>');
  return parts.join('\n');
}

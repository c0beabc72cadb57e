/** The report's small charts as inline SVG: measured times as bars against their targets, publish→OK latency over time. */
import type { ExperimentResult } from '../experiment/experiment.js';

const esc = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** One bar per measured time (detection, recovery, sync), the target as a tick; red when over it or not measured. */
export function timesSvg(r: ExperimentResult): string {
  const rows: Array<[string, number | null, number | null]> = [
    ['detection', r.hypothesis.symptom === null ? null : r.detectionMs, r.hypothesis.symptom === null ? null : r.hypothesis.detectTargetMs],
    ['recovery', r.recoveryMs, r.hypothesis.recoveryTargetMs],
    ['sync', r.syncMs, r.hypothesis.syncTargetMs],
  ];
  const width = 640;
  const left = 80;
  const barH = 16;
  const scaleMax = Math.max(1, ...rows.flatMap(([, v, t]) => [v ?? 0, t ?? 0]));
  const x = (ms: number) => left + (ms / scaleMax) * (width - left - 120);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${rows.length * 26 + 8}" width="${width}" height="${rows.length * 26 + 8}" font-family="sans-serif" font-size="11">`];
  rows.forEach(([label, value, target], i) => {
    const y = 4 + i * 26;
    parts.push(`<text x="${left - 6}" y="${y + 12}" text-anchor="end">${label}</text>`);
    if (label === 'detection' && r.hypothesis.symptom === null) {
      parts.push(`<text x="${left}" y="${y + 12}" fill="#777">not judged (no symptom the relays report)</text>`);
      return;
    }
    const over = value === null || (target !== null && value > target);
    if (value !== null) parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(value) - left).toFixed(1)}" height="${barH}" fill="${over ? '#c0392b' : '#3c9a5f'}"/>`);
    if (target !== null) parts.push(`<line x1="${x(target)}" x2="${x(target)}" y1="${y - 2}" y2="${y + barH + 2}" stroke="#222" stroke-width="2"><title>target ${target} ms</title></line>`);
    const text = `${value === null ? 'not measured' : `${(value / 1000).toFixed(2)} s`}${target === null ? '' : ` (target < ${(target / 1000).toFixed(0)} s)`}`;
    parts.push(`<text x="${Math.max(value === null ? left : x(value), target === null ? 0 : x(target)) + 6}" y="${y + 12}" fill="${over ? '#c0392b' : '#222'}">${esc(text)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** publish→OK p50 and p99 per half second, with the fault window shaded. */
export function latencySvg(r: ExperimentResult): string {
  if (r.latency.length === 0) return '<p>No publish was acknowledged: no latency to show.</p>';
  const width = 960;
  const left = 90;
  const height = 150;
  const top = 10;
  const plotH = 110;
  const t0 = r.startedAt;
  const span = Math.max(1, r.endedAt - t0);
  const x = (t: number) => left + ((t - t0) / span) * (width - left - 20);
  const peak = Math.max(1, ...r.latency.map((p) => p.p99));
  const y = (ms: number) => top + plotH - (ms / peak) * plotH;
  const line = (key: 'p50' | 'p99') => r.latency.map((p) => `${x(p.t + 250).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect x="${x(r.faultAt)}" y="${top}" width="${Math.max(2, x(r.healAt === r.faultAt && r.recoveredAt ? r.recoveredAt : r.healAt) - x(r.faultAt))}" height="${plotH}" fill="#c0392b" fill-opacity="0.10"/>`,
    `<rect x="${left}" y="${top}" width="${width - left - 20}" height="${plotH}" fill="none" stroke="#ccc"/>`,
    `<polyline points="${line('p99')}" fill="none" stroke="#e67e22" stroke-width="1.2"/>`,
    `<polyline points="${line('p50')}" fill="none" stroke="#2c3e50" stroke-width="1.5"/>`,
    `<text x="${left - 8}" y="${top + 10}" text-anchor="end">${peak} ms</text>`,
    `<text x="${left - 8}" y="${top + plotH}" text-anchor="end">0</text>`,
    `<text x="${left}" y="${height - 8}" fill="#2c3e50">publish→OK p50</text><text x="${left + 120}" y="${height - 8}" fill="#e67e22">p99</text><text x="${left + 170}" y="${height - 8}" fill="#c0392b">fault window shaded</text>`,
    '</svg>',
  ].join('\n');
}

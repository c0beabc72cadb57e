/** The experiment report: one self-contained HTML page (inline SVG and CSS, no scripts) plus the raw JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExperimentResult } from '../experiment/experiment.js';
import { summaryRows } from './summary.js';
import { timelineSvg } from './timeline.js';

const esc = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function tableHtml(rows: string[][]): string {
  const [head, ...body] = rows;
  const cell = (c: string) => `<td class="${c === 'FAIL' ? 'fail' : c === 'PASS' ? 'pass' : ''}">${esc(c)}</td>`;
  return `<table><thead><tr>${head!.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

function section(r: ExperimentResult): string {
  const t = (ms: number) => `+${((ms - r.startedAt) / 1000).toFixed(1)} s`;
  const checks = r.checks.map((c) => `<li>relay-${esc(c.node)}: ${c.missing.length} missing, ${c.duplicates.length} duplicated, ${c.served ?? '?'} served${c.error ? `, ${esc(c.error)}` : ''}</li>`).join('');
  const integrity = r.integrity.map((i) => `<li>relay-${esc(i.node)}: ${i.ok === null ? 'n/a' : i.ok ? 'ok' : 'FAILED'} <code>${esc(i.detail.slice(0, 200))}</code></li>`).join('');
  return `<section>
<h2>${esc(r.profile)} — <span class="${r.passed ? 'pass' : 'fail'}">${r.passed ? 'PASS' : 'FAIL'}</span></h2>
<p>${esc(r.description)}<br><em>Runbook: ${esc(r.runbook)}</em></p>
${timelineSvg(r)}
<h3>What happened</h3>
<ul>${r.markers.map((m) => `<li>${t(m.t)}: ${esc(m.label)}</li>`).join('')}</ul>
<ul>${r.actions.map((a) => `<li>${esc(a)}</li>`).join('')}</ul>
<p>Workload: ${r.workload.sent} sent, ${r.workload.acked} acknowledged, ${r.workload.rejected} refused ${esc(JSON.stringify(r.workload.rejections))}, ${r.workload.timedOut} timed out, ${r.workload.unsent} not sent (connection down).</p>
<h3>Checks after heal</h3><ul>${checks}</ul><ul>${integrity}</ul>
${r.violations.length ? `<h3>Violations</h3><ul class="fail">${r.violations.map((v) => `<li>${esc(v)}</li>`).join('')}</ul>` : ''}
</section>`;
}

export function reportHtml(results: ExperimentResult[], title: string): string {
  const passed = results.every((r) => r.passed);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.pass{color:#1e8449;font-weight:bold}.fail{color:#c0392b;font-weight:bold}section{margin-top:2.5em;border-top:1px solid #ddd}
code{font-size:90%;color:#555}
</style></head><body>
<h1>${esc(title)} — <span class="${passed ? 'pass' : 'fail'}">${passed ? 'PASS' : 'FAIL'}</span></h1>
<p>Generated ${new Date().toISOString()} on nodes ${esc(results[0]?.nodes.map((n) => `relay-${n}`).join(', ') ?? '')}. Times: detection from fault injection, recovery and sync from heal (from the kill for a crash).</p>
${tableHtml(summaryRows(results))}
${results.map(section).join('\n')}
</body></html>
`;
}

export function writeReport(file: string, results: ExperimentResult[], title: string): { html: string; json: string } {
  mkdirSync(dirname(file), { recursive: true });
  const html = file.endsWith('.html') ? file : `${file}.html`;
  const json = html.replace(/\.html$/, '.json');
  writeFileSync(html, reportHtml(results, title));
  writeFileSync(json, JSON.stringify(results, null, 1) + '\n');
  return { html, json };
}

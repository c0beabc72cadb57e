/** The experiment report: one self-contained HTML page (inline SVG and CSS, no scripts) plus the raw JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExperimentResult } from '../experiment/experiment.js';
import { latencySvg, timesSvg } from './charts.js';
import { journalOf } from './journal.js';
import { summaryRows } from './summary.js';
import { timelineSvg } from './timeline.js';

const esc = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function tableHtml(rows: string[][]): string {
  const [head, ...body] = rows;
  const cell = (c: string) => `<td class="${c === 'PASS' ? 'pass' : ['FAIL', 'INCONCLUSIVE', 'ABORTED'].includes(c) ? 'fail' : ''}">${esc(c)}</td>`;
  return `<table><thead><tr>${head!.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

function section(r: ExperimentResult): string {
  const t = (ms: number) => `+${((ms - r.startedAt) / 1000).toFixed(1)} s`;
  const checks = (r.check?.nodes ?? []).map((c) => `<li>relay-${esc(c.node)}: ${c.stored} stored, ${c.missing.length} missing, ${c.unserved.length} not served, ${c.duplicates.length} served twice, ${c.undeleted.length} undeleted, ${c.badStreams.length} bad streams, ${c.foreign.length} foreign${c.error ? `, ${esc(c.error)}` : ''}</li>`).join('');
  const divergent = (r.check?.divergent ?? []).map((d) => `<li class="fail">relay-${esc(d.node)} holds ${d.only.length} event(s) another node lacks</li>`).join('');
  const integrity = r.integrity.map((i) => `<li>relay-${esc(i.node)}: ${i.ok === null ? 'n/a' : i.ok ? 'ok' : 'FAILED'} <code>${esc(i.detail.slice(0, 200))}</code></li>`).join('');
  const faults = r.faults === null ? '' : `<h3>Faults proven</h3><ul>${r.faults.map((f) => `<li class="${f.problem ? 'fail' : ''}">sidecar-${esc(f.node)}: ${esc(f.fault)} (${esc(f.type ?? '?')}) on ${esc(f.links.join(',') || '—')}: fired ${f.fired}${f.problem ? ` — ${esc(f.problem)}` : ''}</li>`).join('')}</ul>`;
  const win = (w: ExperimentResult['steady']) => (w ? `${w.acked}/${w.attempted} acknowledged, ${w.acksPerSecond.toFixed(1)} acks/s, publish→OK p50 ${w.p50Ms ?? '—'} ms, p99 ${w.p99Ms ?? '—'} ms` : '—');
  const readers = r.readers.map((x) => `<li>relay-${esc(x.node)}: ${x.seen} events seen live; ${x.missed} of ${x.required} it acknowledged while subscribed missed</li>`).join('');
  return `<section>
<h2>${esc(r.profile)} — <span class="${r.passed ? 'pass' : 'fail'}">${r.verdict}</span> (exit ${r.exitCode})</h2>
<p>${esc(r.description)}<br><em>Hypothesis: ${esc(r.runbook)}</em></p>
<h3>Measured times against the targets</h3>
${timesSvg(r)}
<h3>Timeline</h3>
${timelineSvg(r)}
<h3>Publish→OK latency</h3>
${latencySvg(r)}
<h3>Availability</h3>
<ul><li>steady state before the fault: ${win(r.steady)}</li><li>during the fault: ${win(r.during)}</li></ul>
${faults}
<h3>What happened</h3>
<ul>${r.markers.map((m) => `<li>${t(m.t)}: ${esc(m.label)}</li>`).join('')}</ul>
<ul>${r.actions.map((a) => `<li>${esc(a)}</li>`).join('')}</ul>
<p>Workload at ${r.rate} events/s: ${r.workload.sent} sent (${esc(JSON.stringify(r.workload.roles))}), ${r.workload.acked} acknowledged, ${r.workload.rejected} refused ${esc(JSON.stringify(r.workload.rejections))}, ${r.workload.timedOut} timed out, ${r.workload.unsent} not sent (connection down); ${r.storedNotAcked} stored but never acknowledged.</p>
<h3>Readers (live subscriptions)</h3><ul>${readers}</ul>
<h3>Checks after heal</h3><ul>${checks}</ul><ul>${divergent}</ul><ul>${integrity}</ul>
${r.violations.length ? `<h3>Violations</h3><ul class="fail">${r.violations.map((v) => `<li>${esc(v)}</li>`).join('')}</ul>` : ''}
${r.inconclusive.length ? `<h3>Why inconclusive</h3><ul class="fail">${r.inconclusive.map((v) => `<li>${esc(v)}</li>`).join('')}</ul>` : ''}
</section>`;
}

export function reportHtml(results: ExperimentResult[], title: string): string {
  const passed = results.every((r) => r.passed);
  const overall = passed ? 'PASS' : results.map((r) => r.verdict).find((v) => v !== 'PASS')!;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.pass{color:#1e8449;font-weight:bold}.fail{color:#c0392b;font-weight:bold}section{margin-top:2.5em;border-top:1px solid #ddd}
code{font-size:90%;color:#555}
</style></head><body>
<h1>${esc(title)} — <span class="${passed ? 'pass' : 'fail'}">${overall}</span></h1>
<p>Generated ${new Date().toISOString()} on nodes ${esc(results[0]?.nodes.map((n) => `relay-${n}`).join(', ') ?? '')}. Times: detection from fault injection, recovery and sync from heal (from the kill for a crash).</p>
${tableHtml(summaryRows(results))}
${results.map(section).join('\n')}
</body></html>
`;
}

/**
 * Writes the HTML report, the raw results beside it (.json) and one journal per experiment (.journal.json for a
 * single run, -PROFILE.journal.json for several).
 */
export function writeReport(file: string, results: ExperimentResult[], title: string): { html: string; json: string; journals: string[] } {
  mkdirSync(dirname(file), { recursive: true });
  const html = file.endsWith('.html') ? file : `${file}.html`;
  const base = html.replace(/\.html$/, '');
  const json = `${base}.json`;
  writeFileSync(html, reportHtml(results, title));
  writeFileSync(json, JSON.stringify(results, null, 1) + '\n');
  const journals = results.map((r) => (results.length === 1 ? `${base}.journal.json` : `${base}-${r.profile}.journal.json`));
  results.forEach((r, i) => writeFileSync(journals[i]!, JSON.stringify(journalOf(r), null, 2) + '\n'));
  return { html, json, journals };
}

/** Commands that drive a running sidecar through its API: status, apply, clear, reset, fault add|rm|ls. */
import fs from 'node:fs';
import { callApi, type ApiTarget } from './api-client.js';
import { CliError, EXIT_USAGE } from './exit.js';
import type { ApplyReport } from '../profiles/runner.js';

type Out = (line: string) => void;

interface StatusView {
  node: string;
  version: string;
  seed: number;
  uptime_s: number;
  profile: { name: string; steps: Array<{ index: number; active: boolean; runs: number; next_change_in_ms: number | null }> } | null;
  links: Array<{ name: string; protocol: string; listen: string; upstream: string; enabled: boolean; active_connections: number; connections_total: number; faults: string[] }>;
}

export async function statusCommand(t: ApiTarget, json: boolean, out: Out): Promise<void> {
  const s = (await callApi(t, 'GET', '/status')) as StatusView;
  if (json) return out(JSON.stringify(s, null, 2));
  out(`node ${s.node}  version ${s.version}  seed ${s.seed}  up ${s.uptime_s}s`);
  out(`profile: ${s.profile ? `${s.profile.name} (${s.profile.steps.filter((x) => x.active).length}/${s.profile.steps.length} steps active)` : 'none'}`);
  if (s.links.length === 0) out('links: none');
  for (const l of s.links) {
    out(`link ${l.name} [${l.protocol}] ${l.listen} -> ${l.upstream}${l.enabled ? '' : ' (disabled)'}  conns ${l.active_connections}/${l.connections_total}  faults: ${l.faults.join(', ') || '-'}`);
  }
}

export async function applyCommand(t: ApiTarget, profile: string, out: Out): Promise<void> {
  // A local file is sent as YAML; anything else is a name the sidecar resolves in its profiles dir.
  const isFile = fs.existsSync(profile) && fs.statSync(profile).isFile();
  const report = (isFile
    ? await callApi(t, 'POST', '/profiles', { yaml: fs.readFileSync(profile, 'utf8') })
    : await callApi(t, 'POST', `/profiles/${encodeURIComponent(profile)}`)) as ApplyReport;
  out(`applied profile ${report.profile}`);
  for (const x of report.targets) out(`  ${x.fault} -> ${x.links.join(', ')}`);
  for (const x of report.skipped) out(`  skipped ${x.fault}: ${x.reason}`);
}

export async function clearCommand(t: ApiTarget, out: Out): Promise<void> {
  try {
    await callApi(t, 'DELETE', '/profiles');
    out('profile cleared');
  } catch (err) {
    if (err instanceof CliError && err.message.includes('HTTP 404')) out('no active profile');
    else throw err;
  }
}

export async function resetCommand(t: ApiTarget, out: Out): Promise<void> {
  await callApi(t, 'POST', '/reset');
  out('reset: every link enabled, every fault removed');
}

/** --attr latency=100 --attr mode=nostr → {latency: 100, mode: "nostr"} */
export function parseAttrs(attrs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of attrs) {
    const i = a.indexOf('=');
    if (i <= 0) throw new CliError(`--attr expects key=value, got ${JSON.stringify(a)}`, EXIT_USAGE);
    const v = a.slice(i + 1);
    out[a.slice(0, i)] = v === 'true' ? true : v === 'false' ? false : v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}

export interface FaultAddArgs {
  link: string;
  type: string;
  name?: string;
  stream?: string;
  toxicity?: number;
  duration?: string;
  attr: string[];
}

export async function faultAddCommand(t: ApiTarget, a: FaultAddArgs, out: Out): Promise<void> {
  const body: Record<string, unknown> = { type: a.type, attributes: parseAttrs(a.attr) };
  if (a.name) body.name = a.name;
  if (a.stream) body.stream = a.stream;
  if (a.toxicity !== undefined) body.toxicity = a.toxicity;
  if (a.duration) body.duration = a.duration;
  const f = (await callApi(t, 'POST', `/proxies/${encodeURIComponent(a.link)}/toxics`, { json: body })) as { name: string; stream: string; attributes: object };
  out(`added ${f.name} on ${a.link} (${f.stream}) ${JSON.stringify(f.attributes)}`);
}

export async function faultRmCommand(t: ApiTarget, link: string, name: string, out: Out): Promise<void> {
  await callApi(t, 'DELETE', `/proxies/${encodeURIComponent(link)}/toxics/${encodeURIComponent(name)}`);
  out(`removed ${name} from ${link}`);
}

export async function faultLsCommand(t: ApiTarget, json: boolean, out: Out): Promise<void> {
  const { faults } = (await callApi(t, 'GET', '/faults')) as { faults: Array<{ link: string; name: string; type: string; stream: string; remaining_ms: number | null; source: string }> };
  if (json) return out(JSON.stringify(faults, null, 2));
  if (faults.length === 0) out('no active faults');
  for (const f of faults) {
    out(`${f.link}/${f.name} ${f.type} ${f.stream} ${f.remaining_ms === null ? 'until removed' : `${Math.ceil(f.remaining_ms / 1000)}s left`} (${f.source})`);
  }
}

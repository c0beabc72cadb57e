/** The calls the chaos commands make on a sidecar's API (see docs/SIDECAR.md). */
import { httpJson, postJson } from '../http.js';

export interface ApplyReport {
  profile: string;
  targets: Array<{ fault: string; links: string[] }>;
  skipped: Array<{ fault: string; reason: string }>;
}

export class SidecarApiError extends Error {}

async function expectOk<T>(what: string, p: Promise<{ status: number; body: T }>): Promise<T> {
  const res = await p;
  if (res.status < 200 || res.status >= 300) {
    const detail = typeof res.body === 'object' && res.body && 'error' in res.body ? String((res.body as { error: unknown }).error) : JSON.stringify(res.body);
    throw new SidecarApiError(`${what}: HTTP ${res.status}: ${detail}`);
  }
  return res.body;
}

/** Applies a profile given as YAML text; the sidecar keeps the entries whose `nodes:` include it. */
export function applyProfileYaml(sidecarUrl: string, yaml: string): Promise<ApplyReport> {
  return expectOk(`POST ${sidecarUrl}/profiles`, httpJson<ApplyReport>(`${sidecarUrl}/profiles`, {
    method: 'POST',
    headers: { 'content-type': 'application/yaml' },
    body: yaml,
    timeoutMs: 5000,
  }));
}

/** Toxiproxy's /reset plus ours: active profile cleared, every fault removed, every link enabled. */
export async function resetSidecar(sidecarUrl: string): Promise<void> {
  await expectOk(`POST ${sidecarUrl}/reset`, postJson(`${sidecarUrl}/reset`));
}

export interface FaultView {
  link: string;
  name: string;
  type: string;
  stream: string;
}

export interface FiredTotal {
  link: string;
  type: string;
  fired: number;
}

export interface FaultsSnapshot {
  faults: FaultView[];
  /** Faults fired since the sidecar started, by link and type (kept after a fault is removed). */
  firedTotals: FiredTotal[];
}

export async function faultsSnapshot(sidecarUrl: string): Promise<FaultsSnapshot> {
  const body = await expectOk(`GET ${sidecarUrl}/faults`, httpJson<{ faults?: FaultView[]; fired_totals?: FiredTotal[] }>(`${sidecarUrl}/faults`));
  return { faults: body.faults ?? [], firedTotals: body.fired_totals ?? [] };
}

export async function listFaults(sidecarUrl: string): Promise<FaultView[]> {
  return (await faultsSnapshot(sidecarUrl)).faults;
}

/** The calls the chaos commands make on a sidecar's API (see docs/SIDECAR.md). */
import { httpJson, postJson } from '../http.js';

export interface ApplyReport {
  profile: string;
  targets: Array<{ fault: string; links: string[] }>;
  skipped: Array<{ fault: string; reason: string }>;
}

export class SidecarApiError extends Error {
  /** The sidecar's HTTP status (a 4xx means the request was wrong, not the sidecar). */
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

async function expectOk<T>(what: string, p: Promise<{ status: number; body: T }>): Promise<T> {
  const res = await p;
  if (res.status < 200 || res.status >= 300) {
    const detail = typeof res.body === 'object' && res.body && 'error' in res.body ? String((res.body as { error: unknown }).error) : JSON.stringify(res.body);
    throw new SidecarApiError(`${what}: HTTP ${res.status}: ${detail}`, res.status);
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

export interface FaultInput {
  name?: string;
  type: string;
  stream?: 'upstream' | 'downstream' | 'both';
  toxicity?: number;
  attributes?: Record<string, unknown>;
  /** ms; the sidecar removes the fault by itself when it ends. */
  duration?: number;
}

/** Adds one fault on one link (Toxiproxy's POST /proxies/{link}/toxics); answers the fault as the sidecar stored it. */
export function addFault(sidecarUrl: string, link: string, fault: FaultInput): Promise<Record<string, unknown>> {
  const url = `${sidecarUrl}/proxies/${encodeURIComponent(link)}/toxics`;
  return expectOk(`POST ${url}`, postJson<Record<string, unknown>>(url, fault));
}

/** Removes one fault from one link (Toxiproxy's DELETE /proxies/{link}/toxics/{name}). */
export async function removeFault(sidecarUrl: string, link: string, name: string): Promise<void> {
  const url = `${sidecarUrl}/proxies/${encodeURIComponent(link)}/toxics/${encodeURIComponent(name)}`;
  await expectOk(`DELETE ${url}`, httpJson(url, { method: 'DELETE', timeoutMs: 5000 }));
}

export interface FaultView {
  link: string;
  name: string;
  type: string;
  stream: string;
  /** Time left before the sidecar removes it by itself (null: until removed). */
  remaining_ms?: number | null;
  fired?: number;
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

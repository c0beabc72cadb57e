/** The CLI's client for a running sidecar's HTTP API (Node's fetch). */
import { CliError } from './exit.js';

export interface ApiTarget {
  api: string;
  token?: string;
}

export async function callApi(t: ApiTarget, method: string, path: string, body?: { json?: unknown; yaml?: string }): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  let payload: string | undefined;
  if (body?.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  } else if (body?.yaml !== undefined) {
    headers['content-type'] = 'application/yaml';
    payload = body.yaml;
  }
  const url = t.api.replace(/\/$/, '') + path;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach the sidecar API at ${t.api}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text; // /metrics is text
    }
  }
  if (!res.ok) {
    const msg = (data as { error?: string } | null)?.error ?? text;
    throw new CliError(`${method} ${path} failed: ${msg} (HTTP ${res.status})`);
  }
  return data;
}

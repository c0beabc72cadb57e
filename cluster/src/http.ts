/** Small JSON-over-HTTP helpers with a deadline, for admin and sidecar APIs. */

export interface HttpResult<T> {
  status: number;
  body: T;
}

export async function httpJson<T = unknown>(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<HttpResult<T>> {
  const { timeoutMs = 3000, ...rest } = init;
  const res = await fetch(url, { ...rest, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown = text;
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (Prometheus text, plain errors): the caller gets the text.
    }
  }
  return { status: res.status, body: body as T };
}

/** GET that answers undefined instead of throwing when the endpoint is down or missing. */
export async function tryGet<T = unknown>(url: string, timeoutMs = 1500): Promise<HttpResult<T> | undefined> {
  try {
    return await httpJson<T>(url, { timeoutMs });
  } catch {
    return undefined;
  }
}

export function postJson<T = unknown>(url: string, body?: unknown, timeoutMs = 5000): Promise<HttpResult<T>> {
  return httpJson<T>(url, {
    method: 'POST',
    timeoutMs,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
}

/** Small JSON-over-HTTP helpers with a deadline, for admin and sidecar APIs. */

export interface HttpResult<T> {
  status: number;
  body: T;
}

/** A GET is retried on a network error (a busy machine drops or delays connections); other methods are not. */
async function fetchWithRetry(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const attempts = (init.method ?? 'GET') === 'GET' ? 3 : 1;
  for (let i = 1; ; i++) {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      if (i >= attempts) throw new Error(`${init.method ?? 'GET'} ${url}: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`);
      await new Promise((r) => setTimeout(r, 200 * i));
    }
  }
}

export async function httpJson<T = unknown>(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<HttpResult<T>> {
  const { timeoutMs = 3000, ...rest } = init;
  const res = await fetchWithRetry(url, rest, timeoutMs);
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
export async function tryGet<T = unknown>(url: string, timeoutMs = 3000): Promise<HttpResult<T> | undefined> {
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

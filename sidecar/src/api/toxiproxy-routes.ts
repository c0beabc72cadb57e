/**
 * Toxiproxy's API, same paths, shapes and status codes, so existing Toxiproxy
 * clients work unchanged. A "toxic" is any of our faults.
 */
import type http from 'node:http';
import type { Sidecar } from '../sidecar.js';
import type { ActiveFault, FaultInput, Link } from '../links/link.js';
import { FaultError } from '../faults/index.js';
import { parseTimerMs } from '../units.js';
import { HttpError, parseJson, readBody, sendEmpty, sendJson } from './http-util.js';

export function toxicJson(f: ActiveFault) {
  const out: Record<string, unknown> = { name: f.name, type: f.type, stream: f.stream, toxicity: f.toxicity, attributes: f.attributes };
  if (f.duration !== undefined) out.duration = f.duration;
  return out;
}

export function proxyJson(l: Link) {
  return { ...l.spec(), toxics: [...l.faults.values()].map(toxicJson) };
}

/** A toxic body → FaultInput; our extra `duration` may be ms or "30s". */
function toxicInput(body: unknown, partial: boolean): Partial<FaultInput> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'toxic must be a JSON object');
  const b = body as Record<string, unknown>;
  const known = ['name', 'type', 'stream', 'toxicity', 'attributes', 'duration'];
  for (const k of Object.keys(b)) if (!known.includes(k)) throw new HttpError(400, `unknown toxic field: ${k}`);
  if (!partial && (typeof b.type !== 'string' || !b.type)) throw new HttpError(400, 'missing required field: type');
  const out: Partial<FaultInput> = {};
  if (b.name !== undefined && b.name !== '') {
    if (typeof b.name !== 'string' || /[/?#]/.test(b.name)) throw new HttpError(400, 'toxic name must be a string without / ? #');
    out.name = b.name;
  }
  if (typeof b.type === 'string') out.type = b.type;
  if (b.stream !== undefined && b.stream !== '') out.stream = String(b.stream);
  if (b.toxicity !== undefined) out.toxicity = b.toxicity as number;
  if (b.attributes !== undefined && b.attributes !== null) out.attributes = b.attributes as Record<string, unknown>;
  if (b.duration !== undefined && b.duration !== null) {
    try {
      out.duration = parseTimerMs(b.duration);
    } catch (err) {
      throw new HttpError(400, `duration: ${(err as Error).message}`);
    }
  }
  return out;
}

/** Returns false when the path is not one of Toxiproxy's. */
export async function toxiproxyRoutes(sc: Sidecar, req: http.IncomingMessage, res: http.ServerResponse, parts: string[]): Promise<boolean> {
  const m = req.method ?? 'GET';
  const [p0, name, p2, toxic, extra] = parts;
  if (p0 === 'reset' && parts.length === 1) {
    if (m !== 'POST') throw new HttpError(405, 'use POST /reset');
    await sc.reset();
    sendEmpty(res);
    return true;
  }
  if (p0 === 'populate' && parts.length === 1) {
    if (m !== 'POST') throw new HttpError(405, 'use POST /populate');
    const links = await sc.populate(parseJson(await readBody(req)));
    sendJson(res, 201, { proxies: links.map(proxyJson) });
    return true;
  }
  if (p0 !== 'proxies' || extra !== undefined || (p2 !== undefined && p2 !== 'toxics')) return false;

  if (name === undefined) {
    if (m === 'GET') {
      sendJson(res, 200, Object.fromEntries([...sc.links.values()].map((l) => [l.name, proxyJson(l)])));
    } else if (m === 'POST') {
      const link = await sc.createLink(parseJson(await readBody(req)) as object);
      sendJson(res, 201, proxyJson(link));
    } else throw new HttpError(405, 'use GET or POST on /proxies');
    return true;
  }

  if (p2 === undefined) {
    if (m === 'GET') sendJson(res, 200, proxyJson(sc.getLink(name)));
    else if (m === 'POST' || m === 'PATCH') sendJson(res, 200, proxyJson(await sc.updateLink(name, parseJson(await readBody(req)) as object)));
    else if (m === 'DELETE') {
      await sc.deleteLink(name);
      sendEmpty(res);
    } else throw new HttpError(405, 'use GET, POST, PATCH or DELETE on /proxies/{name}');
    return true;
  }

  const link = sc.getLink(name);
  if (toxic === undefined) {
    if (m === 'GET') sendJson(res, 200, [...link.faults.values()].map(toxicJson));
    else if (m === 'POST') {
      const input = toxicInput(parseJson(await readBody(req)), false) as FaultInput;
      sendJson(res, 200, toxicJson(link.addFault(input)));
    } else throw new HttpError(405, 'use GET or POST on /proxies/{name}/toxics');
    return true;
  }
  if (m === 'GET') {
    const f = link.faults.get(toxic);
    if (!f) throw new FaultError(`toxic not found: ${toxic}`, 404);
    sendJson(res, 200, toxicJson(f));
  } else if (m === 'POST' || m === 'PATCH') {
    const patch = toxicInput(parseJson(await readBody(req)), true);
    if (patch.type !== undefined && patch.type !== link.faults.get(toxic)?.type && link.faults.has(toxic)) {
      throw new HttpError(400, 'the type of a toxic cannot change; delete and recreate it');
    }
    sendJson(res, 200, toxicJson(link.updateFault(toxic, patch)));
  } else if (m === 'DELETE') {
    link.removeFault(toxic);
    sendEmpty(res);
  } else throw new HttpError(405, 'use GET, POST, PATCH or DELETE on /proxies/{name}/toxics/{toxic}');
  return true;
}

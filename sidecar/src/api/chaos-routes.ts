/** Our API on top of Toxiproxy's: profiles, faults, status, health, fault types. */
import type http from 'node:http';
import type { Sidecar } from '../sidecar.js';
import { listProfiles, loadNamedProfile } from '../profiles/loader.js';
import { parseProfile } from '../profiles/profile.js';
import { listFaultTypes } from '../faults/index.js';
import { HttpError, parseJson, readBody, sendEmpty, sendJson } from './http-util.js';

export async function chaosRoutes(sc: Sidecar, req: http.IncomingMessage, res: http.ServerResponse, parts: string[]): Promise<boolean> {
  const m = req.method ?? 'GET';
  const [p0, p1, extra] = parts;
  if (extra !== undefined) return false;
  switch (p0) {
    case 'health':
      if (p1 !== undefined) return false;
      sendJson(res, 200, { status: 'ok' });
      return true;
    case 'status':
      if (p1 !== undefined) return false;
      sendJson(res, 200, sc.status());
      return true;
    case 'faults':
      if (p1 !== undefined) return false;
      sendJson(res, 200, { faults: sc.faultsView(), fired_totals: sc.firedTotals() });
      return true;
    case 'fault-types':
      if (p1 !== undefined) return false;
      sendJson(res, 200, listFaultTypes().map((t) => ({ type: t.type, doc: t.doc, protocols: t.protocols, attributes: t.attributes })));
      return true;
    case 'profiles':
      return profiles(sc, req, res, m, p1);
    default:
      return false;
  }
}

async function profiles(sc: Sidecar, req: http.IncomingMessage, res: http.ServerResponse, m: string, name: string | undefined): Promise<boolean> {
  const dir = sc.opts.profilesDir;
  if (name !== undefined) {
    if (m === 'GET') sendJson(res, 200, loadNamedProfile(name, dir));
    else if (m === 'POST') sendJson(res, 200, sc.applyProfile(loadNamedProfile(name, dir)));
    else throw new HttpError(405, 'use GET or POST on /profiles/{name}');
    return true;
  }
  if (m === 'GET') {
    sendJson(res, 200, { available: listProfiles(dir), active: sc.profile?.status() ?? null });
  } else if (m === 'POST') {
    // Apply by name ({"name": "latency"}) or by posting the profile's YAML itself.
    const body = await readBody(req);
    const type = req.headers['content-type'] ?? '';
    if (type.includes('json')) {
      const b = parseJson(body) as { name?: unknown };
      if (!b || typeof b.name !== 'string') throw new HttpError(400, 'missing required field: name');
      sendJson(res, 200, sc.applyProfile(loadNamedProfile(b.name, dir)));
    } else {
      if (body.trim() === '') throw new HttpError(400, 'missing request body: a profile in YAML');
      sendJson(res, 200, sc.applyProfile(parseProfile(body, '<request body>', 'posted')));
    }
  } else if (m === 'DELETE') {
    if (!sc.clearProfile()) throw new HttpError(404, 'no active profile');
    sendEmpty(res);
  } else throw new HttpError(405, 'use GET, POST or DELETE on /profiles');
  return true;
}

import { HttpError, type AdminRequest, type AdminServer } from '../admin/admin-server.js';
import { isNodeId, normalizeIp, normalizeSubject, subjectTypeOf } from '../security/subjects.js';
import { parseDurationSeconds } from '../ratelimit/rules.js';
import { toRecord, type BanRecord } from './ban.js';
import type { BanList } from './ban-list.js';
import type { ScoreBoard, ScoreView } from './scores.js';
import { MAX_SCORE } from './scores.js';

export interface ReputationRouteDeps {
  bans: BanList;
  scores: ScoreBoard;
  /** Node ids of peers connected now (listed with their score even when clean). */
  connectedPeers: () => string[];
  nodeId: () => string | null;
  settings: Record<string, unknown>;
}

function bodyObject(req: AdminRequest): Record<string, unknown> {
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
    throw new HttpError(400, 'body must be a JSON object, e.g. {"nodeId": "<64 hex>"}');
  }
  return req.body as Record<string, unknown>;
}

/** `nodeId` (a peer's 64-hex key) or `address` (a client IP); `subject` accepts either. */
function subjectOf(body: Record<string, unknown>): string {
  const given = body.nodeId ?? body.address ?? body.subject;
  if (typeof given !== 'string' || given.trim() === '') throw new HttpError(400, 'nodeId (64 hex characters) or address (a client IP) is required');
  if (body.nodeId !== undefined && !isNodeId(given.trim().toLowerCase())) throw new HttpError(400, 'nodeId must be 64 hex characters');
  return normalizeSubject(given);
}

/** null: permanent. Accepts "30s", "10m", "1h", "7d", a number of seconds, or "permanent". */
function durationOf(value: unknown): number | null {
  if (value === undefined || value === null || value === 'permanent' || value === 'forever') return null;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  if (typeof value === 'string') {
    try {
      return parseDurationSeconds(value);
    } catch (err) {
      throw new HttpError(400, `duration: ${(err as Error).message}`);
    }
  }
  throw new HttpError(400, 'duration must be like "1h", "30m", "7d", a number of seconds, or "permanent"');
}

function importRecords(body: unknown): BanRecord[] {
  const list = Array.isArray(body) ? body : typeof body === 'object' && body !== null ? (body as { bans?: unknown }).bans : undefined;
  if (!Array.isArray(list)) throw new HttpError(400, 'body must be the export of GET /admin/bans ({"bans": [...]}) or an array of bans');
  return list.map((item, i) => {
    if (typeof item !== 'object' || item === null) throw new HttpError(400, `bans[${i}] must be an object`);
    const entry = item as Record<string, unknown>;
    const raw = entry.subject ?? entry.nodeId ?? entry.address;
    if (typeof raw !== 'string' || raw.trim() === '') throw new HttpError(400, `bans[${i}] needs a subject or nodeId`);
    const subject = normalizeSubject(raw);
    if (!isNodeId(subject) && !/^[0-9a-f.:]+$/i.test(normalizeIp(subject))) throw new HttpError(400, `bans[${i}]: ${raw} is neither a node id nor an IP address`);
    const expiresAt = entry.expiresAt ?? null;
    if (expiresAt !== null && (typeof expiresAt !== 'string' || Number.isNaN(Date.parse(expiresAt)))) {
      throw new HttpError(400, `bans[${i}].expiresAt must be an ISO date or null (permanent)`);
    }
    return {
      subject,
      type: subjectTypeOf(subject),
      reason: typeof entry.reason === 'string' ? entry.reason.slice(0, 500) : 'imported',
      origin: 'import',
      bannedAt: typeof entry.bannedAt === 'string' ? entry.bannedAt : new Date().toISOString(),
      expiresAt: expiresAt as string | null,
      strikes: 0,
    };
  });
}

/** The reputation and ban endpoints of the runbook's Byzantine recovery procedure. */
export function registerReputationRoutes(admin: AdminServer, deps: ReputationRouteDeps): void {
  const { bans, scores } = deps;

  admin.route('GET', '/admin/reputation/scores', () => {
    const views: Array<ScoreView & { nodeId?: string; banned: boolean; bannedUntil?: string | null }> = [];
    const listed = new Set<string>();
    const add = (view: ScoreView) => {
      listed.add(view.subject);
      const ban = bans.get(view.subject);
      views.push({
        ...(view.type === 'peer' ? { nodeId: view.subject } : {}),
        ...view,
        banned: ban !== undefined,
        ...(ban ? { bannedUntil: ban.expiresAt === null ? null : new Date(ban.expiresAt).toISOString() } : {}),
      });
    };
    for (const view of scores.list()) add(view);
    for (const nodeId of deps.connectedPeers()) {
      if (!listed.has(nodeId)) add({ subject: nodeId, type: 'peer', score: MAX_SCORE, offences: {}, lastOffence: undefined, lastOffenceAt: undefined });
    }
    for (const ban of bans.list()) {
      if (!listed.has(ban.subject)) add({ subject: ban.subject, type: ban.type, score: scores.score(ban.subject), offences: {}, lastOffence: undefined, lastOffenceAt: undefined });
    }
    views.sort((a, b) => a.score - b.score);
    return { maxScore: MAX_SCORE, banThreshold: scores.threshold, ...deps.settings, scores: views };
  });

  admin.route('POST', '/admin/peers/ban', async (req) => {
    const body = bodyObject(req);
    const subject = subjectOf(body);
    const reason = typeof body.reason === 'string' && body.reason.trim() !== '' ? body.reason.trim().slice(0, 500) : 'banned by operator';
    const ban = bans.ban(subject, { reason, origin: 'manual', durationSeconds: durationOf(body.duration) });
    return { banned: true, ban: toRecord(ban), ...(await persistence(bans)) };
  });

  admin.route('POST', '/admin/peers/unban', async (req) => {
    const subject = subjectOf(bodyObject(req));
    const lifted = bans.unban(subject);
    if (!lifted) return { status: 404, body: { error: `${subject} is not banned`, status: 404 } };
    return { unbanned: true, subject, ...(subjectTypeOf(subject) === 'peer' ? { nodeId: subject } : {}), ...(await persistence(bans)) };
  });

  admin.route('GET', '/admin/bans', () => ({
    version: 1,
    exportedAt: new Date().toISOString(),
    exportedBy: deps.nodeId(),
    bans: bans.list().map(toRecord),
  }));

  admin.route('POST', '/admin/bans/import', async (req) => {
    const records = importRecords(req.body);
    const { imported, skipped } = bans.import(records);
    return { imported: imported.length, skipped, bans: imported.map(toRecord), ...(await persistence(bans)) };
  });
}

/** Says whether the change reached PostgreSQL; if not, the ban is in force anyway and the write is retried. */
async function persistence(bans: BanList): Promise<{ persisted: boolean; warning?: string }> {
  try {
    await bans.persisted();
    return { persisted: true };
  } catch (err) {
    return { persisted: false, warning: `in force, but not yet stored in PostgreSQL (${(err as Error).message}); retrying` };
  }
}

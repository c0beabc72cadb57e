import { NegentropyTimeoutError, type NegentropyChannel } from '../negentropy/initiator.js';

export type OkResult = { ok: boolean; message: string };

interface ReqCollector {
  events: unknown[];
  max: number;
  resolve: (events: unknown[]) => void;
  reject: (err: Error) => void;
}

interface NegSession {
  frames: unknown[][];
  /** No NEG-MSG/NEG-ERR yet: a NOTICE now is most likely the peer's answer to our NEG-OPEN (no NIP-77). */
  answered: boolean;
  waiter?: (f: unknown[]) => void;
}

/** Events one query may collect beyond its own `limit`: a peer that ignores `limit` is cut off, not buffered. */
const DEFAULT_MAX_EVENTS = 5000;
/** A NOTICE text kept for the error message: bounded, it comes from the peer. */
const NOTICE_CHARS = 200;

let nextSub = 1;

/**
 * The request/answer bookkeeping of one peer link: EVENT → OK waiters, REQ → EVENT…EOSE collectors, NIP-77
 * sessions. The link feeds it the frames it reads and tells it when the connection is lost; everything waiting
 * is then settled at once, and every wait has its own timeout, so nothing here can hang a caller.
 */
export class LinkRequests {
  private readonly okWaiters = new Map<string, Array<(r: OkResult) => void>>();
  private readonly reqs = new Map<string, ReqCollector>();
  private readonly negFrames = new Map<string, NegSession>();

  constructor(
    private readonly send: (frame: string) => boolean,
    private readonly isUp: () => boolean,
  ) {}

  /** Sends a frame and waits for the OK with this id. */
  push(frame: string, id: string, timeoutMs: number): Promise<OkResult> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ ok: false, message: 'error: no OK from the peer in time' }), timeoutMs);
      const done = (r: OkResult) => {
        clearTimeout(timer);
        const list = this.okWaiters.get(id);
        if (list) {
          const at = list.indexOf(done);
          if (at >= 0) list.splice(at, 1);
          if (list.length === 0) this.okWaiters.delete(id);
        }
        resolve(r);
      };
      const list = this.okWaiters.get(id) ?? [];
      list.push(done);
      this.okWaiters.set(id, list);
      if (!this.send(frame)) done({ ok: false, message: 'error: link is down' });
    });
  }

  /**
   * REQ with these filters; resolves with every stored event at EOSE, rejects on CLOSED, timeout, link loss, or
   * more than `maxEvents` events (a peer ignoring our `limit`).
   */
  query(filters: unknown[], timeoutMs: number, maxEvents = DEFAULT_MAX_EVENTS): Promise<unknown[]> {
    const subId = `peer-fetch-${nextSub++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no EOSE within ${timeoutMs} ms`)), timeoutMs);
      const finish = (err?: Error, events?: unknown[]) => {
        clearTimeout(timer);
        if (!this.reqs.delete(subId)) return;
        this.send(JSON.stringify(['CLOSE', subId]));
        if (err) reject(err);
        else resolve(events!);
      };
      this.reqs.set(subId, { events: [], max: maxEvents, resolve: (events) => finish(undefined, events), reject: (err) => finish(err) });
      if (!this.send(JSON.stringify(['REQ', subId, ...filters]))) finish(new Error('link is down'));
    });
  }

  /** The NIP-77 channel over this link, for the initiator. */
  negentropyChannel(): NegentropyChannel {
    return {
      send: (frame) => {
        if (frame[0] === 'NEG-OPEN') this.negFrames.set(String(frame[1]), { frames: [], answered: false });
        if (frame[0] === 'NEG-CLOSE') this.negFrames.delete(String(frame[1]));
        this.send(JSON.stringify(frame));
      },
      next: (subId, timeoutMs) =>
        new Promise((resolve, reject) => {
          const session = this.negFrames.get(subId);
          if (!session) return reject(new Error('negentropy session is not open'));
          const queued = session.frames.shift();
          if (queued) return resolve(queued);
          if (!this.isUp()) return reject(new Error('link is down'));
          const timer = setTimeout(() => {
            session.waiter = undefined;
            reject(new NegentropyTimeoutError(`no NEG-MSG within ${timeoutMs} ms`));
          }, timeoutMs);
          session.waiter = (f) => {
            clearTimeout(timer);
            session.waiter = undefined;
            if (f[0] === 'LINK-DOWN') reject(new Error('link went down during reconciliation'));
            else resolve(f);
          };
        }),
    };
  }

  /** Takes the frames that answer a request; returns false for the others (the link handles those). */
  onFrame(frame: unknown[]): boolean {
    const [type, a] = frame;
    if (type === 'OK' && typeof a === 'string') {
      for (const waiter of [...(this.okWaiters.get(a) ?? [])]) waiter({ ok: frame[2] === true, message: String(frame[3] ?? '') });
      return true;
    }
    if (type === 'EVENT' && typeof a === 'string') {
      const req = this.reqs.get(a);
      if (!req) return false;
      req.events.push(frame[2]);
      if (req.events.length > req.max) req.reject(new Error(`peer sent more than ${req.max} events for one query`));
      return true;
    }
    if (type === 'EOSE' && typeof a === 'string' && this.reqs.has(a)) {
      const req = this.reqs.get(a)!;
      req.resolve(req.events);
      return true;
    }
    if (type === 'CLOSED' && typeof a === 'string') {
      const req = this.reqs.get(a);
      if (req) {
        req.reject(new Error(`peer closed the query: ${String(frame[2]).slice(0, NOTICE_CHARS)}`));
        return true;
      }
      // Some relays answer an unknown verb for a subscription id with CLOSED: for a NEG-OPEN, that is a refusal.
      if (this.negFrames.has(a)) {
        this.deliverNeg(a, frame);
        return true;
      }
      return false;
    }
    if ((type === 'NEG-MSG' || type === 'NEG-ERR') && typeof a === 'string') {
      if (this.negFrames.has(a)) this.deliverNeg(a, frame);
      return true;
    }
    if (type === 'NOTICE') {
      // A relay without NIP-77 (nostream, many others) answers NEG-OPEN with a NOTICE that names no session:
      // it goes to every session still waiting for its first answer.
      for (const [subId, session] of this.negFrames) if (!session.answered) this.deliverNeg(subId, ['NOTICE', String(a).slice(0, NOTICE_CHARS)]);
      return false;
    }
    return false;
  }

  /** The connection is gone: every waiter is settled now. */
  linkLost(): void {
    for (const req of [...this.reqs.values()]) req.reject(new Error('link went down'));
    for (const session of this.negFrames.values()) session.waiter?.(['LINK-DOWN']);
    this.negFrames.clear();
    for (const [, waiters] of this.okWaiters) for (const w of [...waiters]) w({ ok: false, message: 'error: link went down' });
  }

  private deliverNeg(subId: string, frame: unknown[]): void {
    const session = this.negFrames.get(subId)!;
    session.answered = true;
    if (session.waiter) session.waiter(frame);
    // Bounded: a session holds at most a few frames before the initiator reads them; more is a misbehaving peer.
    else if (session.frames.length < 16) session.frames.push(frame);
  }
}

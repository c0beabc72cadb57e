/**
 * A link: a listener, its upstream, its faults and its live connections.
 * Subclasses (tcp-link, ws-link) own the transport; this class owns fault
 * bookkeeping, which is the same for both:
 *
 *   accept ──▶ accept hooks of faults (refuse / black-hole / answer) ──▶ async dial (timeout)
 *                                                                          │
 *        stages of each fault, per direction, after a toxicity roll ◀──────┘
 *
 * Adding or removing a fault is synchronous: stages are linked into or out of
 * live pipes, and nothing waits on data in flight.
 */
import type net from 'node:net';
import type { AcceptDecision, Direction, Protocol } from '../faults/contract.js';
import { FaultError } from '../faults/index.js';
import { StageNode } from '../pipeline/pipe.js';
import { rngFromKey } from '../rng.js';
import type { Logger } from '../logger.js';
import type { Connection, ConnectionOwner } from './connection.js';
import { formatHostPort, parseHostPort, type HostPort } from './address.js';
import { buildActiveFault, directionsOf, type ActiveFault, type FaultInput } from './fault-spec.js';

export interface LinkSpec {
  name: string;
  listen: string;
  upstream: string;
  protocol: Protocol;
  enabled: boolean;
}

export interface LinkContext {
  log: Logger;
  seed: number;
  dialTimeoutMs: number;
  onFired(link: string, type: string): void;
  onFaultChange(action: 'added' | 'removed' | 'expired'): void;
  /** Envoy-style safety valve: throws when one more fault would exceed max_active_faults. */
  checkFaultBudget(): void;
}

export { STREAMS, type ActiveFault, type FaultInput } from './fault-spec.js';

export abstract class Link implements ConnectionOwner {
  readonly log: Logger;
  readonly faults = new Map<string, ActiveFault>();
  readonly conns = new Set<Connection>();
  readonly stats = { bytesUpstream: 0, bytesDownstream: 0, connectionsTotal: 0, dialFailures: 0, refused: 0, badHandshakes: 0, linkErrors: 0 };
  /** Protocol errors of peers, by the fault (or tracker) that parsed them. */
  readonly protocolErrors = new Map<string, number>();
  listenAddr: HostPort;
  upstreamAddr: HostPort;
  enabled: boolean;
  private acceptSeq = 0;
  private faultEpoch = 0;
  private connSeq = 0;
  private readonly blackholed = new Set<net.Socket>();
  /** Every accepted client socket, so stop() can close idle keep-alive and dialling ones too. */
  private readonly accepted = new Set<net.Socket>();

  constructor(
    readonly name: string,
    readonly protocol: Protocol,
    listen: string,
    upstream: string,
    enabled: boolean,
    protected readonly ctx: LinkContext,
  ) {
    this.listenAddr = parseHostPort(listen, 'listen');
    this.upstreamAddr = parseHostPort(upstream, 'upstream');
    this.enabled = enabled;
    this.log = ctx.log.child({ component: 'link', link: name });
  }

  /** Bind the listener; the real port replaces port 0 so a restart keeps the address. */
  protected abstract listenNow(): Promise<number>;
  protected abstract closeListener(): Promise<void>;

  async start(): Promise<void> {
    if (!this.enabled) return;
    this.listenAddr = { ...this.listenAddr, port: await this.listenNow() };
    this.log.info({ listen: formatHostPort(this.listenAddr), upstream: formatHostPort(this.upstreamAddr) }, 'link listening');
  }

  async stop(): Promise<void> {
    // server.close() waits for open sockets, so they are destroyed before waiting on it.
    const closing = this.closeListener();
    for (const c of [...this.conns]) c.close('link stopped');
    for (const s of this.blackholed) s.destroy();
    this.blackholed.clear();
    for (const s of this.accepted) s.destroy();
    this.accepted.clear();
    await closing;
  }

  /**
   * Partial update (Toxiproxy PATCH): a new listen or upstream restarts the listener; enabled=false closes it and
   * every connection. If the new listener cannot start, the old address is restored (and listened on again), so
   * what the API reports is what is listening; if even that fails the link is reported disabled.
   */
  async reconfigure(p: { listen?: string; upstream?: string; enabled?: boolean }): Promise<void> {
    const listen = p.listen !== undefined ? parseHostPort(p.listen, 'listen') : undefined;
    const upstream = p.upstream !== undefined ? parseHostPort(p.upstream, 'upstream') : undefined;
    const enabled = p.enabled ?? this.enabled;
    const moved =
      (listen !== undefined && formatHostPort(listen) !== formatHostPort(this.listenAddr)) ||
      (upstream !== undefined && formatHostPort(upstream) !== formatHostPort(this.upstreamAddr));
    if (!moved && enabled === this.enabled) return;
    const before = { listen: this.listenAddr, upstream: this.upstreamAddr, enabled: this.enabled };
    if (this.enabled) await this.stop();
    if (listen) this.listenAddr = listen;
    if (upstream) this.upstreamAddr = upstream;
    this.enabled = enabled;
    try {
      await this.start();
    } catch (err) {
      this.listenAddr = before.listen;
      this.upstreamAddr = before.upstream;
      this.enabled = before.enabled;
      try {
        await this.start();
      } catch (again) {
        this.enabled = false;
        this.log.error({ err: (again as Error).message }, 'link could not listen again on its old address: disabled');
        throw new Error(`${(err as Error).message}; the old address could not be listened on again either (${(again as Error).message}): the proxy is now disabled`);
      }
      throw new Error(`${(err as Error).message}; the proxy keeps its previous settings`);
    }
  }

  /** Stop and clear timers of every fault; for deleting the link. */
  async dispose(): Promise<void> {
    for (const f of this.faults.values()) if (f.timer) clearTimeout(f.timer);
    this.faults.clear();
    await this.stop();
  }

  spec(): LinkSpec {
    return {
      name: this.name,
      listen: formatHostPort(this.listenAddr),
      upstream: formatHostPort(this.upstreamAddr),
      protocol: this.protocol,
      enabled: this.enabled,
    };
  }

  countBytes(dir: Direction, n: number): void {
    if (dir === 'upstream') this.stats.bytesUpstream += n;
    else this.stats.bytesDownstream += n;
  }

  untrack(conn: Connection): void {
    this.conns.delete(conn);
  }

  protocolError(conn: Connection | null, source: string, why: string): void {
    this.protocolErrors.set(source, (this.protocolErrors.get(source) ?? 0) + 1);
    this.log.warn({ conn: conn?.id, source, why }, 'protocol error: connection closed');
  }

  /**
   * Last line of defence for one connection: an exception while handling its data (a fault's bug, a hostile
   * input nothing else caught) is logged, counted and closes that connection, never the process.
   */
  guard(conn: Connection | null, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.linkFailure(conn, err);
    }
  }

  linkFailure(conn: Connection | null, err: unknown): void {
    this.stats.linkErrors++;
    this.log.error({ conn: conn?.id, err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, 'connection handling failed: connection closed');
    if (!conn) return;
    try {
      conn.close('internal error');
    } catch (closeErr) {
      this.log.error({ conn: conn.id, err: (closeErr as Error).message }, 'closing a failed connection failed');
    }
  }

  // ---- faults -------------------------------------------------------------

  addFault(input: FaultInput): ActiveFault {
    const f = this.buildFault(input);
    if (this.faults.has(f.name)) throw new FaultError(`toxic already exists: ${f.name}`, 409);
    this.ctx.checkFaultBudget();
    this.faults.set(f.name, f);
    this.arm(f);
    for (const conn of this.conns) this.applyToConnection(f, conn, true);
    this.ctx.onFaultChange('added');
    this.log.info({ fault: f.name, type: f.type, stream: f.stream, toxicity: f.toxicity, attributes: f.attributes, source: f.source }, 'fault added');
    return f;
  }

  /**
   * Toxiproxy's update: the fault changes in place. Stages keep their state (counters, timers, held data), their
   * place in each pipeline and their toxicity roll (a connection is affected while its roll is below the
   * toxicity); the fault's `duration` keeps running unless a new one is given. Stages read their attributes when
   * they use them, so new values apply at once.
   */
  updateFault(name: string, patch: Partial<FaultInput>): ActiveFault {
    const f = this.faults.get(name);
    if (!f) throw new FaultError(`toxic not found: ${name}`, 404);
    const input: FaultInput = {
      name,
      type: f.type,
      stream: patch.stream ?? f.stream,
      toxicity: patch.toxicity ?? f.toxicity,
      attributes: { ...f.attributes, ...(patch.attributes ?? {}) },
      source: f.source,
    };
    if (patch.duration !== undefined) input.duration = patch.duration;
    const next = this.buildFault(input, true); // validate before touching the live one
    f.stream = next.stream;
    f.toxicity = next.toxicity;
    Object.assign(f.attributes, next.attributes);
    if (next.duration !== undefined) {
      if (f.timer) clearTimeout(f.timer);
      f.duration = next.duration;
      this.arm(f);
    }
    for (const conn of this.conns) this.reconcile(f, conn);
    this.log.info({ fault: name, stream: f.stream, toxicity: f.toxicity, attributes: f.attributes }, 'fault updated');
    return f;
  }

  /** After an update: add the stages a connection now needs (in the fault's place), remove the ones it no longer does. */
  private reconcile(f: ActiveFault, conn: Connection): void {
    const dirs = this.directions(f);
    for (const dir of ['upstream', 'downstream'] as const) {
      const pipe = dir === 'upstream' ? conn.up : conn.down;
      const has = pipe.has(f.name);
      const wanted = !!f.def.stage && dirs.includes(dir) && this.rngFor(f.name, conn.id, dir).next() < f.toxicity;
      if (has && !wanted) pipe.remove(f.name);
      else if (!has && wanted) this.applyDirection(f, conn, dir, true);
    }
  }

  removeFault(name: string, why: 'removed' | 'expired' = 'removed'): ActiveFault {
    const f = this.faults.get(name);
    if (!f) throw new FaultError(`toxic not found: ${name}`, 404);
    this.faults.delete(name);
    if (f.timer) clearTimeout(f.timer);
    for (const conn of this.conns) {
      conn.up.remove(name);
      conn.down.remove(name);
    }
    for (const s of f.blackholed) {
      s.destroy();
      this.blackholed.delete(s);
    }
    this.ctx.onFaultChange(why);
    this.log.info({ fault: name, type: f.type, why }, 'fault removed');
    return f;
  }

  removeAllFaults(): void {
    for (const name of [...this.faults.keys()]) this.removeFault(name);
  }

  /** Validate a fault for this link without installing it (a profile checks every entry before applying any). */
  checkFault(input: FaultInput): void {
    this.buildFault(input, true);
  }

  private buildFault(input: FaultInput, dry = false): ActiveFault {
    return buildActiveFault(input, this.protocol, dry ? this.faultEpoch : ++this.faultEpoch);
  }

  /** Timed faults remove themselves. */
  private arm(f: ActiveFault): void {
    if (f.duration === undefined) return;
    f.expiresAt = Date.now() + f.duration;
    f.timer = setTimeout(() => {
      if (this.faults.get(f.name) === f) {
        this.log.info({ fault: f.name }, 'fault duration over');
        this.removeFault(f.name, 'expired');
      }
    }, f.duration);
  }

  private directions(f: ActiveFault): Direction[] {
    return directionsOf(f);
  }

  private rngFor(fault: string, id: number, what: string) {
    return rngFromKey(`${this.ctx.seed}|${this.name}|${fault}|${id}|${what}`);
  }

  private fired(f: ActiveFault): void {
    f.fired++;
    this.ctx.onFired(this.name, f.type);
  }

  /** Toxicity is rolled once per connection and direction (Toxiproxy's meaning). */
  protected applyToConnection(f: ActiveFault, conn: Connection, existing: boolean): void {
    if (!f.def.stage) return;
    for (const dir of this.directions(f)) this.applyDirection(f, conn, dir, existing);
  }

  private applyDirection(f: ActiveFault, conn: Connection, dir: Direction, existing: boolean): void {
    const rng = this.rngFor(f.name, conn.id, dir);
    if (rng.next() >= f.toxicity) return;
    const pipe = dir === 'upstream' ? conn.up : conn.down;
    const node = new StageNode(f.name, f.epoch);
    const stage = f.def.stage!({
      attrs: f.attributes,
      dir,
      protocol: this.protocol,
      rng,
      conn,
      existing,
      // Guarded: a stage's timer that emits into a failing stage closes this connection, not the process.
      emit: (c) => this.guard(conn, () => pipe.emitFrom(node, c)),
      drop: (c) => pipe.dropped(c),
      end: () => this.guard(conn, () => pipe.endFrom(node)),
      fired: () => this.fired(f),
      protocolError: (why) => this.protocolError(conn, f.type, why),
    });
    if (!stage) return;
    node.stage = stage;
    pipe.insert(node);
  }

  protected nextConnId(): number {
    this.stats.connectionsTotal++;
    return ++this.connSeq;
  }

  /** Marks the moment a client was accepted; faults added after it treat the connection as existing. */
  protected acceptEpoch(): number {
    return this.faultEpoch;
  }

  protected track(conn: Connection, acceptedAt: number): void {
    this.conns.add(conn);
    for (const f of this.faults.values()) this.applyToConnection(f, conn, f.epoch > acceptedAt);
  }

  /**
   * Run the accept hooks of active faults on a new client socket. Returns true
   * when a fault took the socket (refused, black-holed or answered).
   */
  protected interceptAccept(socket: net.Socket): boolean {
    this.accepted.add(socket);
    socket.once('close', () => this.accepted.delete(socket));
    const id = ++this.acceptSeq;
    for (const f of this.faults.values()) {
      if (!f.def.accept) continue;
      const rng = this.rngFor(f.name, id, 'accept');
      if (rng.next() >= f.toxicity) continue;
      const decision: AcceptDecision | undefined = f.def.accept({
        attrs: f.attributes,
        protocol: this.protocol,
        rng,
        protocolError: (why) => this.protocolError(null, f.type, why),
      });
      if (!decision) continue;
      this.fired(f);
      this.stats.refused++;
      socket.on('error', (err) => this.log.debug({ err: err.message, fault: f.name }, 'intercepted client socket error'));
      if (decision.kind === 'reset') socket.resetAndDestroy();
      else if (decision.kind === 'blackhole') {
        f.blackholed.add(socket);
        this.blackholed.add(socket);
        socket.on('data', () => {}); // read and discard so the client never blocks on a full window
        // A client that goes away (FIN) is closed, not left in CLOSE_WAIT on a half-open listener socket.
        socket.on('end', () => socket.destroy());
        socket.on('close', () => {
          f.blackholed.delete(socket);
          this.blackholed.delete(socket);
        });
      } else {
        try {
          decision.handle(socket);
        } catch (err) {
          this.linkFailure(null, err);
          socket.destroy();
        }
      }
      return true;
    }
    return false;
  }

  /** A client handshake refused before anything was dialled (malformed upgrade). */
  protected handshakeRefused(why: string): void {
    this.stats.badHandshakes++;
    this.log.warn({ why }, 'client handshake refused');
  }

  protected dialFailed(err: Error): void {
    this.stats.dialFailures++;
    this.log.warn({ err: err.message, upstream: formatHostPort(this.upstreamAddr) }, 'upstream dial failed');
  }
}

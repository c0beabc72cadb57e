/**
 * The fault contract: what a fault file exports and what the pipeline gives it.
 *
 * A fault type may act at two points of a connection's life:
 *   - accept(): when a client connects, before the upstream is dialled
 *     (partition refuses or black-holes it, pg_error answers it itself);
 *   - stage(): one instance per connection and direction, inserted in that
 *     direction's pipeline, seeing every chunk (tcp) or message (ws).
 * A stage must account for every chunk it is given: emit it (now or later,
 * possibly changed or split), or drop it. close(true) means the fault was
 * removed: release what it holds at once, never wait on data in flight.
 */
import type net from 'node:net';
import type { Rng } from '../rng.js';
import type { RespScanner } from '../protocols/resp.js';

export type Direction = 'upstream' | 'downstream';
export type Stream = Direction | 'both';
export type Protocol = 'tcp' | 'ws';

/** A tcp chunk or a ws message (binary tells which ws frame type to send). */
export interface Chunk {
  data: Buffer;
  binary: boolean;
  /** A ws control frame relayed through the fault chain (content faults leave these alone). */
  control?: 'ping' | 'pong';
}

export type AttrType = 'number' | 'string' | 'boolean';

export interface AttrSpec {
  type: AttrType;
  default: number | string | boolean;
  min?: number;
  max?: number;
  oneOf?: readonly string[];
  /** Also accept a duration string ("100ms") or a rate string ("1mbps") for this number. */
  unit?: 'duration' | 'rate' | 'us-duration';
  doc: string;
}

export type Attributes = Record<string, number | string | boolean>;

/** What a stage may do to the whole connection. */
export interface ConnControl {
  readonly id: number;
  /** Close both sides (FIN, then destroy). */
  close(reason: string): void;
  /** A real TCP RST (linger 0) to both the client and the upstream. */
  reset(reason: string): void;
  /**
   * Answer a command that was not forwarded (redis_error): the reply enters the downstream pipeline after the
   * server's replies to every command forwarded before it, so a FIFO client matches it to the right command.
   */
  injectReply(data: Buffer): void;
  /**
   * A redis_error stage starts: RESP tracking runs on the connection until every stage detached (and its injected
   * replies are out). `start`: the stream is at byte 0; `continue`: the scanner is where the server's request stream
   * is; `resync`: mid-stream, find a command boundary and send `marker` (if given) there before answering anything.
   */
  respAttach(): RespAttachment;
  respDetach(): void;
}

export type RespAttachment =
  | { mode: 'start' }
  | { mode: 'continue'; scanner: RespScanner }
  | { mode: 'resync'; marker?: Buffer; markerSent?: () => void };

export interface StageContext {
  attrs: Attributes;
  dir: Direction;
  protocol: Protocol;
  rng: Rng;
  conn: ConnControl;
  /** True when the connection existed before the fault was added. */
  existing: boolean;
  emit(chunk: Chunk): void;
  drop(chunk: Chunk): void;
  /** Propagate end-of-stream (half-close / ws close) to the next stage. */
  end(): void;
  /** Count one fault event (a drop, a delay, a reset...) in the metrics. */
  fired(): void;
  /** The peer broke the protocol this fault parses (a bad length...): counted and logged; the caller closes. */
  protocolError(why: string): void;
}

export interface Stage {
  chunk(chunk: Chunk): void;
  /** The source finished. Default: pass the end on at once. */
  end?(): void;
  /** flush=true: the fault is being removed, release held data now; false: connection is gone. */
  close(flush: boolean): void;
}

export type AcceptDecision =
  | { kind: 'reset' }
  | { kind: 'blackhole' }
  | { kind: 'handle'; handle(socket: net.Socket): void };

export interface AcceptContext {
  attrs: Attributes;
  protocol: Protocol;
  rng: Rng;
  /** The client broke the protocol the handler parses: counted and logged; the handler closes the socket. */
  protocolError(why: string): void;
}

export interface FaultType {
  type: string;
  doc: string;
  protocols: readonly Protocol[];
  attributes: Record<string, AttrSpec>;
  /** Directions this fault always works on, whatever stream was asked (redis_error answers commands). */
  fixedStream?: Stream;
  /** Decide per-chunk toxicity meaning: stages created only for connections whose roll passes. */
  stage?(ctx: StageContext): Stage | undefined;
  accept?(ctx: AcceptContext): AcceptDecision | undefined;
}

import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { plausibleTriple } from './hex.js';
import type { SignatureVerifier } from './types.js';
import type { VerifierBackend } from './backends.js';
import type { WorkerData, WorkerRequest, WorkerResponse } from './worker-protocol.js';

export interface WorkerPoolOptions {
  /** Number of worker threads; defaults to the number of CPUs. */
  workers?: number;
  /** Largest number of items sent to a worker in one message. */
  maxBatch?: number;
  /** A worker holding work that answers nothing for this long is treated as hung and replaced. */
  batchTimeoutMs?: number;
  /** Override for the worker entry (tests); defaults to verify-worker next to this module. */
  workerUrl?: URL;
  /** Library the workers verify with; default tiny-secp256k1 (WASM). */
  backend?: VerifierBackend;
}

export interface WorkerPoolStats {
  workers: number;
  readyWorkers: number;
  /** Workers replaced after a crash, exit or hang since the pool started. */
  restarts: number;
  queued: number;
  inFlightItems: number;
  batchesSent: number;
  itemsVerified: number;
  /** The backend the workers were asked to load. */
  backend: VerifierBackend;
  /** Backends the live workers reported loading (the test workers report none). */
  readyBackends: VerifierBackend[];
}

interface Pending {
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

interface Batch {
  items: Pending[];
}

interface Slot {
  index: number;
  worker: Worker;
  ready: boolean;
  /** What the worker said it loaded in its ready message. */
  loadedBackend?: VerifierBackend;
  /** Set once this worker has been given up on, so its later events are ignored. */
  dead: boolean;
  inFlight: Map<number, Batch>;
  inFlightItems: number;
  /** Last answer from the worker, or when it was handed work while idle. */
  lastProgress: number;
}

const MAX_RESTART_DELAY_MS = 5_000;

/** Loaded from source (tsx or tap's TS loader) the sibling worker is .ts too; see startWorker. */
const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');
const DEFAULT_WORKER_URL = new URL(RUNNING_FROM_SOURCE ? './verify-worker.ts' : './verify-worker.js', import.meta.url);

/**
 * Starts the worker entry. The worker is self-contained CPU work, so the parent's preload flags (tsx, tap's ts-node
 * and coverage hooks, APM agents) are dropped: they only slow its startup. A .ts entry (tests and benches import the
 * sources) still needs a TS loader, and Node 20 does not carry the parent's loader hooks into workers — so a tiny
 * ESM bootstrap registers tsx inside the worker first and then imports the entry.
 */
function startWorker(url: URL, workerData: WorkerData): Worker {
  const execArgv = withoutPreloads(process.execArgv);
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { execArgv, workerData });
  let tsxApi: string;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    // No tsx installed: keep the inherited loader flags and hope they cover workers.
    return new Worker(url, { workerData });
  }
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true, execArgv, workerData });
}

function withoutPreloads(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (/^(--import|--loader|--experimental-loader|--require|-r)$/.test(a)) i++;
    else if (!/^--(import|loader|experimental-loader|require)=/.test(a)) out.push(a);
  }
  return out;
}

/**
 * SignatureVerifier backed by worker_threads running one backend (native libsecp256k1 or tiny-secp256k1 WASM, both
 * far faster than noble per core; bench/verify prints the figures).
 *
 * Requests arriving within one event-loop turn are coalesced into messages of up to `maxBatch` items, which
 * amortises postMessage/structured-clone cost; each message goes to the worker with the fewest items in flight.
 * A worker that exits, errors or hangs is replaced and every request it held is rejected with an Error — a
 * request is never answered true unless a worker actually verified it.
 */
export class WorkerPoolVerifier implements SignatureVerifier {
  private readonly size: number;
  private readonly maxBatch: number;
  private readonly batchTimeoutMs: number;
  private readonly workerUrl: URL;
  readonly backend: VerifierBackend;
  private readonly slots: Slot[] = [];
  private queue: Array<{ triple: [string, string, string]; pending: Pending }> = [];
  private flushScheduled = false;
  private seq = 0;
  private rr = 0;
  private closed = false;
  private restarts = 0;
  private batchesSent = 0;
  private itemsVerified = 0;
  /** Consecutive workers that died before reporting ready; drives restart back-off so a broken build doesn't spin. */
  private startupFailures = 0;
  private readonly watchdog: NodeJS.Timeout;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(options: WorkerPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.workers ?? cpus().length));
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 64));
    this.batchTimeoutMs = options.batchTimeoutMs ?? 30_000;
    this.workerUrl = options.workerUrl ?? DEFAULT_WORKER_URL;
    this.backend = options.backend ?? 'wasm';
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn(i));
    this.watchdog = setInterval(() => this.checkHung(), Math.min(1_000, this.batchTimeoutMs));
    this.watchdog.unref();
  }

  verify(idHex: string, pubkeyHex: string, sigHex: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('verifier is closed'));
    // Wrong types or lengths can never verify; answering here also keeps uncloneable values out of postMessage.
    if (!plausibleTriple(idHex, pubkeyHex, sigHex)) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ triple: [idHex, pubkeyHex, sigHex], pending: { resolve, reject } });
      if (this.queue.length >= this.maxBatch * this.size) this.flush();
      else this.scheduleFlush();
    });
  }

  verifyMany(items: Array<{ id: string; pubkey: string; sig: string }>): Promise<boolean[]> {
    if (this.closed) return Promise.reject(new Error('verifier is closed'));
    return Promise.all(items.map((it) => (it ? this.verify(it.id, it.pubkey, it.sig) : Promise.resolve(false))));
  }

  /**
   * Resolves once every worker slot holds a live, loaded worker (useful before timing anything, or after a crash).
   * Rejects if a worker dies before loading or the pool is closed.
   */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('verifier is closed'));
    if (this.allReady()) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  private allReady(): boolean {
    return this.slots.every((s) => s.ready && !s.dead);
  }

  stats(): WorkerPoolStats {
    let inFlightItems = 0;
    for (const s of this.slots) inFlightItems += s.inFlightItems;
    return {
      workers: this.slots.length,
      readyWorkers: this.slots.filter((s) => s.ready && !s.dead).length,
      restarts: this.restarts,
      queued: this.queue.length,
      inFlightItems,
      batchesSent: this.batchesSent,
      itemsVerified: this.itemsVerified,
      backend: this.backend,
      readyBackends: [...new Set(this.slots.filter((s) => s.ready && !s.dead && s.loadedBackend).map((s) => s.loadedBackend!))],
    };
  }

  /** Kills one worker as if it had crashed (chaos testing); the pool fails its requests and replaces it. */
  async terminateWorker(index: number): Promise<void> {
    const slot = this.slots[index];
    if (!slot) throw new Error(`no worker ${index}`);
    await slot.worker.terminate();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    const err = new Error('verifier is closed');
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
    for (const q of this.queue) q.pending.reject(err);
    this.queue = [];
    const terminations: Array<Promise<number>> = [];
    for (const slot of this.slots) {
      this.failSlot(slot, err);
      terminations.push(slot.worker.terminate());
    }
    await Promise.allSettled(terminations);
  }

  private spawn(index: number): Slot {
    const worker = startWorker(this.workerUrl, { backend: this.backend });
    const slot: Slot = { index, worker, ready: false, dead: false, inFlight: new Map(), inFlightItems: 0, lastProgress: Date.now() };
    worker.on('message', (msg: WorkerResponse) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.onWorkerGone(slot, `verify worker ${index} failed: ${err.message}`));
    worker.on('exit', (code) => this.onWorkerGone(slot, `verify worker ${index} exited with code ${code}`));
    return slot;
  }

  private onMessage(slot: Slot, msg: WorkerResponse): void {
    if (slot.dead) return;
    slot.lastProgress = Date.now();
    if (msg.type === 'ready') {
      slot.ready = true;
      slot.loadedBackend = msg.backend;
      this.startupFailures = 0;
      if (this.allReady()) for (const w of this.readyWaiters.splice(0)) w.resolve();
      return;
    }
    const batch = slot.inFlight.get(msg.seq);
    if (!batch) return;
    slot.inFlight.delete(msg.seq);
    slot.inFlightItems -= batch.items.length;
    this.itemsVerified += batch.items.length;
    for (let i = 0; i < batch.items.length; i++) batch.items[i]!.resolve(msg.results[i] === 1);
  }

  private onWorkerGone(slot: Slot, reason: string): void {
    if (slot.dead) return;
    this.failSlot(slot, new Error(reason));
    if (this.closed) return;
    // The worker may still be running (error before exit, or hung); make sure it goes away.
    void slot.worker.terminate();
    this.restarts++;
    if (!slot.ready) {
      this.startupFailures++;
      // Workers that die before loading would otherwise leave queued callers waiting forever on a broken install.
      const err = new Error(`${reason} (before it finished loading)`);
      for (const w of this.readyWaiters.splice(0)) w.reject(err);
      if (!this.slots.some((s) => s.ready && !s.dead)) for (const q of this.queue.splice(0)) q.pending.reject(err);
    }
    const delay = this.startupFailures === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 50 * 2 ** (this.startupFailures - 1));
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (this.closed) return;
      this.slots[slot.index] = this.spawn(slot.index);
      if (this.queue.length > 0) this.scheduleFlush();
    }, delay);
    this.restartTimers.add(timer);
  }

  private failSlot(slot: Slot, err: Error): void {
    slot.dead = true;
    for (const batch of slot.inFlight.values()) for (const p of batch.items) p.reject(err);
    slot.inFlight.clear();
    slot.inFlightItems = 0;
  }

  private checkHung(): void {
    const now = Date.now();
    for (const slot of this.slots) {
      if (slot.dead) continue;
      // Time since the last answer, not a batch's age: a deep but moving backlog is not a hang.
      if (slot.inFlight.size > 0 && now - slot.lastProgress > this.batchTimeoutMs) {
        this.onWorkerGone(slot, `verify worker ${slot.index} did not answer within ${this.batchTimeoutMs} ms`);
      }
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every request arriving in this event-loop turn (e.g. a burst of socket frames) join the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const slot = this.pickSlot();
      // All workers are being replaced; the replacement reschedules a flush.
      if (!slot) return;
      const chunk = this.queue.splice(0, this.maxBatch);
      const flat: string[] = new Array(chunk.length * 3);
      for (let i = 0; i < chunk.length; i++) {
        const t = chunk[i]!.triple;
        flat[3 * i] = t[0];
        flat[3 * i + 1] = t[1];
        flat[3 * i + 2] = t[2];
      }
      const seq = ++this.seq;
      if (slot.inFlight.size === 0) slot.lastProgress = Date.now();
      slot.inFlight.set(seq, { items: chunk.map((c) => c.pending) });
      slot.inFlightItems += chunk.length;
      this.batchesSent++;
      const req: WorkerRequest = { seq, flat };
      slot.worker.postMessage(req);
    }
  }

  /** Least-loaded live worker; round-robin start point breaks ties so idle workers share the load. */
  private pickSlot(): Slot | undefined {
    let best: Slot | undefined;
    const n = this.slots.length;
    for (let k = 0; k < n; k++) {
      const slot = this.slots[(this.rr + k) % n]!;
      if (slot.dead) continue;
      if (!best || slot.inFlightItems < best.inFlightItems) best = slot;
    }
    this.rr = (this.rr + 1) % n;
    return best;
  }
}

// A Byzantine node for tests and the benchmark: a separate process holding a node key, speaking the peer
// protocol (NIP-42 AUTH with its node key, then EVENT frames, some announced by PEER-HOPS as our relays forward),
// that sends forged signatures, altered content and floods. Run in process (`NostrLink`) or as a child process
// (`startMaliciousNode`), which reports JSON lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import * as ecc from 'tiny-secp256k1';

export type Frame = unknown[];

export interface SignedEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

export interface LinkOptions {
  /** Local address to connect from (e.g. 127.0.0.2, so a test can ban it without banning 127.0.0.1). */
  localAddress?: string;
  /** Answer the relay's NIP-42 challenge with the node key, i.e. act as a peer (default); false: stay a client. */
  authenticate?: boolean;
}

/** One WebSocket to a relay, with the OK bookkeeping a flood needs (answers matched by id, not by order). */
export class NostrLink {
  readonly notices: string[] = [];
  /** The NIP-42 challenge the relay sent, once `authenticate` has read it. */
  challenge: string | undefined;
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<void>;
  private readonly okWaiters = new Map<string, (r: { ok: boolean; message: string }) => void>();
  private readonly frameWaiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  private readonly frames: Frame[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      if (frame[0] === 'OK' && typeof frame[1] === 'string' && this.okWaiters.has(frame[1])) {
        const resolve = this.okWaiters.get(frame[1])!;
        this.okWaiters.delete(frame[1]);
        resolve({ ok: frame[2] as boolean, message: String(frame[3] ?? '') });
        return;
      }
      if (frame[0] === 'NOTICE') this.notices.push(String(frame[1]));
      const waiter = this.frameWaiters.find((w) => w.match(frame));
      if (waiter) {
        this.frameWaiters.splice(this.frameWaiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      } else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        for (const [id, resolveOk] of this.okWaiters) resolveOk({ ok: false, message: `closed: connection closed (${code}) before OK for ${id}` });
        this.okWaiters.clear();
        resolve();
      }),
    );
  }

  /** Opens a link; rejects with the HTTP status (e.g. 403 for a banned address) if the upgrade is refused. */
  static connect(url: string, options: LinkOptions = {}): Promise<NostrLink> {
    const ws = new WebSocket(url, { localAddress: options.localAddress, perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new NostrLink(ws)));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: unknown): void {
    if (this.open) this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  next(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms`)), timeoutMs);
      this.frameWaiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /**
   * Sends an EVENT (with `forwarded`, as our relays forward to each other: `["PEER-HOPS", id, hops]` first) and
   * resolves with its OK, or a synthetic `closed:` refusal if the link closes first.
   */
  publish(event: SignedEvent, mode: 'EVENT' | 'forwarded' = 'EVENT'): Promise<{ ok: boolean; message: string }> {
    if (mode === 'forwarded') this.send(['PEER-HOPS', event.id, 1]);
    return this.publishFrame(event.id, JSON.stringify(['EVENT', event]));
  }

  /** Sends a frame serialized beforehand (a flood should cost its sender as little as possible). */
  publishFrame(id: string, frame: string): Promise<{ ok: boolean; message: string }> {
    if (!this.open) return Promise.resolve({ ok: false, message: 'closed: link is not open' });
    const answer = new Promise<{ ok: boolean; message: string }>((resolve) => this.okWaiters.set(id, resolve));
    this.send(frame);
    return answer;
  }

  /**
   * NIP-42 as the peer protocol uses it: answer the relay's challenge with a kind 22242 event signed by the node
   * key (tags `relay`, `challenge`). Resolves with the relay's OK; a relay that sends no challenge gets none.
   */
  async authenticate(secretKey: Uint8Array, relayUrl: string, timeoutMs = 1000): Promise<{ ok: boolean; message: string } | undefined> {
    let challenge: Frame;
    try {
      challenge = await this.next((f) => f[0] === 'AUTH' && typeof f[1] === 'string', timeoutMs);
    } catch {
      return undefined;
    }
    this.challenge = String(challenge[1]);
    return this.answerChallenge(secretKey, relayUrl, this.challenge);
  }

  /** Sends an AUTH for `challenge` (e.g. a second AUTH on the same connection) and resolves with its OK. */
  answerChallenge(secretKey: Uint8Array, relayUrl: string, challenge: string): Promise<{ ok: boolean; message: string }> {
    const auth = finalizeEvent({ kind: 22242, created_at: Math.floor(Date.now() / 1000), tags: [['relay', relayUrl], ['challenge', challenge]], content: '' }, secretKey);
    const answer = new Promise<{ ok: boolean; message: string }>((resolve) => this.okWaiters.set(auth.id, resolve));
    this.send(['AUTH', auth]);
    return answer;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.ws.close();
    return this.closed;
  }
}

/**
 * Signs with tiny-secp256k1 (BIP-340, native speed): a flood needs thousands of events and nostr-tools' pure-JS
 * signer is ~10x slower on a busy machine. Tests still check the results with the relay's own verifier.
 */
export function fastSign(template: { kind: number; created_at: number; tags: string[][]; content: string }, secretKey: Uint8Array): SignedEvent {
  const pubkey = Buffer.from(ecc.xOnlyPointFromScalar(secretKey)).toString('hex');
  const hash = createHash('sha256').update(JSON.stringify([0, pubkey, template.created_at, template.kind, template.tags, template.content])).digest();
  const sig = Buffer.from(ecc.signSchnorr(hash, secretKey, randomBytes(32))).toString('hex');
  return { ...template, pubkey, id: hash.toString('hex'), sig };
}

/** Events of every flavour the Byzantine node sends. Each is new (random content), so no duplicate short-cuts. */
export const craft = {
  valid(secretKey: Uint8Array, kind = 1): SignedEvent {
    return fastSign({ kind, created_at: Math.floor(Date.now() / 1000), tags: [], content: `honest ${randomBytes(8).toString('hex')}` }, secretKey);
  },
  /** Correct id, signature of another event: fails only the signature check. */
  forged(secretKey: Uint8Array): SignedEvent {
    const event = craft.valid(secretKey);
    return { ...event, content: event.content, sig: craft.valid(secretKey).sig };
  },
  /** Content changed after signing: the id no longer matches. */
  altered(secretKey: Uint8Array): SignedEvent {
    const event = craft.valid(secretKey);
    return { ...event, content: event.content + ' [altered]' };
  },
};

export interface AttackPlan {
  /** Valid events sent first (a compromised node also relays honest traffic). */
  valid?: number;
  /** Events with a wrong signature. */
  forged?: number;
  /** Events altered after signing (id mismatch). */
  altered?: number;
  /** Valid events sent as fast as `perSecond` allows, for `seconds`. */
  flood?: {
    perSecond: number;
    seconds: number;
    /**
     * Duty cycle: flood for `onMs`, pause for `offMs`, repeat (default: no pauses). Lets a measurement compare
     * honest latency with and without the flood under the same background load.
     */
    onMs?: number;
    offMs?: number;
  };
  /** Pause before the attack, ms (e.g. to let the relay settle). */
  delayMs?: number;
}

export interface AttackReport {
  type: 'report';
  nodeId: string;
  authenticated: boolean | undefined;
  sent: number;
  /** OK answers by prefix: 'true', 'invalid', 'rate-limited', 'blocked', 'closed' ... */
  answers: Record<string, number>;
  invalidIds: string[];
  closeCode: number | undefined;
  /** ms from the first invalid event sent to the relay closing the link; undefined if it stayed open. */
  closedAfterMs: number | undefined;
  /** Events sent when the relay closed the link, and when (epoch ms). */
  sentBeforeClose?: number;
  closedAt?: number;
  /** When the flood began and ended (epoch ms). */
  floodStartedAt?: number;
  floodEndedAt?: number;
  /** Ids of the valid events the relay accepted. */
  acceptedIds: string[];
  /** Whether a reconnect after the close was refused (HTTP 403 or AUTH refused). */
  reconnect: 'refused' | 'accepted' | 'not-tried';
}

/** Runs an attack plan over one link. Used by the child process and by in-process callers. */
export async function runAttack(url: string, secretKey: Uint8Array, plan: AttackPlan, options: LinkOptions = {}): Promise<AttackReport> {
  const nodeId = getPublicKey(secretKey);
  // Signed before connecting, so the flood runs at the planned rate and signing does not compete for CPU with it.
  const flood = plan.flood ? Array.from({ length: plan.flood.perSecond * plan.flood.seconds }, () => craft.valid(secretKey)) : [];
  const floodFrames = flood.map((event) => JSON.stringify(['EVENT', event]));
  const cycle = plan.flood?.offMs ? { on: plan.flood.onMs ?? 1000, off: plan.flood.offMs } : undefined;
  const link = await NostrLink.connect(url, options);
  const auth = options.authenticate === false ? undefined : await link.authenticate(secretKey, url);
  const report: AttackReport = { type: 'report', nodeId, authenticated: auth?.ok, sent: 0, answers: {}, invalidIds: [], acceptedIds: [], closeCode: undefined, closedAfterMs: undefined, reconnect: 'not-tried' };
  // An authenticated peer alternates between plain EVENTs and EVENTs announced by PEER-HOPS, as our relays forward.
  const frameFor = (n: number): 'EVENT' | 'forwarded' => (auth?.ok && n % 2 === 1 ? 'forwarded' : 'EVENT');
  if (plan.delayMs) await new Promise((r) => setTimeout(r, plan.delayMs));
  const pending: Array<Promise<void>> = [];
  const send = (event: SignedEvent, serialized?: string) => {
    report.sent++;
    const frame = frameFor(report.sent);
    pending.push(
      (serialized ? link.publishFrame(event.id, serialized) : link.publish(event, frame)).then((r) => {
        if (r.ok) report.acceptedIds.push(event.id);
        const key = r.ok ? 'true' : (r.message.split(':', 1)[0] ?? 'unknown');
        report.answers[key] = (report.answers[key] ?? 0) + 1;
      }),
    );
  };
  let firstInvalidAt: number | undefined;
  void link.closed.then(() => {
    if (firstInvalidAt !== undefined) report.closedAfterMs = Date.now() - firstInvalidAt;
    report.sentBeforeClose = report.sent;
    report.closedAt = Date.now();
  });
  for (let i = 0; i < (plan.valid ?? 0) && link.open; i++) {
    send(craft.valid(secretKey));
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let i = 0; i < (plan.forged ?? 0) && link.open; i++) {
    const event = craft.forged(secretKey);
    firstInvalidAt ??= Date.now();
    report.invalidIds.push(event.id);
    send(event);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let i = 0; i < (plan.altered ?? 0) && link.open; i++) {
    const event = craft.altered(secretKey);
    firstInvalidAt ??= Date.now();
    report.invalidIds.push(event.id);
    send(event);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (plan.flood) {
    const started = Date.now();
    report.floodStartedAt = started;
    for (let i = 0; i < flood.length && link.open; i++) {
      send(flood[i]!, floodFrames[i]);
      // Paced in small bursts: at most 10 ms ahead of the schedule, which skips the pauses of a duty cycle.
      const floodMs = ((i + 1) * 1000) / plan.flood.perSecond;
      const due = started + (cycle ? Math.floor(floodMs / cycle.on) * (cycle.on + cycle.off) + (floodMs % cycle.on) : floodMs);
      if (due - Date.now() > 10) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    report.floodEndedAt = Date.now();
  }
  await Promise.race([Promise.all(pending), link.closed]);
  await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 2000))]);
  // The relay answers the event that gets the node banned before it closes the link: give the close a moment.
  await Promise.race([link.closed, new Promise((r) => setTimeout(r, 1000))]);
  if (!link.open) {
    await link.closed;
    report.closeCode = link.closeCode;
    try {
      const again = await NostrLink.connect(url, options);
      const reauth = options.authenticate === false ? undefined : await again.authenticate(secretKey, url);
      const probe = await Promise.race([
        again.publish(craft.valid(secretKey)),
        again.closed.then(() => ({ ok: false, message: 'closed:' })),
      ]);
      report.reconnect = reauth?.ok === false || !probe.ok ? 'refused' : 'accepted';
      await again.close();
    } catch {
      report.reconnect = 'refused';
    }
  } else {
    await link.close();
  }
  return report;
}

export interface MaliciousNodeProcess {
  nodeId: string;
  secretKey: Uint8Array;
  child: ChildProcess;
  /** Resolves with the attack report once the plan has run. */
  report: Promise<AttackReport>;
  kill(): void;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/** Starts the Byzantine node as its own process (node + tsx) against `url`. */
export function startMaliciousNode(
  url: string,
  plan: AttackPlan,
  options: LinkOptions & {
    secretKey?: Uint8Array;
    /**
     * Run at this `nice` level: a real attacker is another machine, so on a shared test box its own CPU use should
     * not be charged to the relay under test (the flood is pre-signed, so its rate does not suffer).
     */
    nice?: number;
  } = {},
): MaliciousNodeProcess {
  const secretKey = options.secretKey ?? generateSecretKey();
  const config = { url, plan, localAddress: options.localAddress, authenticate: options.authenticate, secretKey: Buffer.from(secretKey).toString('hex') };
  const argv = [process.execPath, '--import', 'tsx', THIS_FILE, JSON.stringify(config)];
  const [command, ...args] = options.nice ? ['nice', '-n', String(options.nice), ...argv] : argv;
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const report = new Promise<AttackReport>((resolve, reject) =>
    child.once('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{"type":"report"'));
      if (line) resolve(JSON.parse(line) as AttackReport);
      else reject(new Error(`malicious node exited (${code}) without a report; stderr: ${stderr.slice(-2000)}`));
    }),
  );
  return { nodeId: getPublicKey(secretKey), secretKey, child, report, kill: () => child.kill('SIGKILL') };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = JSON.parse(process.argv[2] ?? '{}') as { url: string; plan: AttackPlan; localAddress?: string; authenticate?: boolean; secretKey: string };
  const options: LinkOptions = { ...(config.localAddress ? { localAddress: config.localAddress } : {}), ...(config.authenticate === false ? { authenticate: false } : {}) };
  runAttack(config.url, Uint8Array.from(Buffer.from(config.secretKey, 'hex')), config.plan, options).then(
    (report) => {
      process.stdout.write(JSON.stringify(report) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`malicious node failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

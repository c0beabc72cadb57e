export type HeartbeatVerdict = 'alive' | 'suspect' | 'dead';

/**
 * Liveness of one link: a ping every interval (sent by the caller; answered end to end), anything heard from
 * the peer (an answer or any message) counts. Silent for more than 1.5 intervals: suspect; silent for the timeout: dead.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private pingSentAt = 0;
  lastHeard = Date.now();
  rttMs: number | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly ping: () => void,
    private readonly onVerdict: (verdict: HeartbeatVerdict, silentMs: number) => void,
  ) {}

  start(): void {
    this.stop();
    this.lastHeard = Date.now();
    this.sendPing();
    // Checks run four times per interval so a dead peer is noticed soon after the timeout, not an interval later.
    const tick = Math.max(10, Math.floor(Math.min(this.intervalMs, this.timeoutMs) / 4));
    let sinceLastPing = 0;
    this.timer = setInterval(() => {
      sinceLastPing += tick;
      if (sinceLastPing >= this.intervalMs) {
        sinceLastPing = 0;
        this.sendPing();
      }
      const silent = Date.now() - this.lastHeard;
      this.onVerdict(silent >= this.timeoutMs ? 'dead' : silent > this.intervalMs * 1.5 ? 'suspect' : 'alive', silent);
    }, tick);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  heard(): void {
    this.lastHeard = Date.now();
  }

  pong(): void {
    const now = Date.now();
    this.lastHeard = now;
    if (this.pingSentAt > 0) this.rttMs = Number((performance.now() - this.pingSentAt).toFixed(2));
    this.pingSentAt = 0;
  }

  private sendPing(): void {
    // One ping in flight at a time, so the RTT is that of the ping it answers.
    if (this.pingSentAt === 0) this.pingSentAt = performance.now();
    this.ping();
  }
}

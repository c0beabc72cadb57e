import { Counter, Gauge, type Registry } from 'prom-client';
import type { RelayLimits } from '../config/schema.js';

/** A token bucket: `rate` tokens a second, holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly rate: number, private readonly burst: number) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * At most `max` holders at once; the rest wait in FIFO order. The wait queue is bounded by the callers (each waiter
 * is an open subscription, bounded per connection), and a waiter whose signal aborts leaves the queue at once.
 */
export class Semaphore {
  private held = 0;
  private readonly waiters: Array<{ grant: () => void }> = [];

  constructor(private readonly max: number, private readonly onChange?: (held: number, waiting: number) => void) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free; rejects with the signal's reason if it aborts first. */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.held < this.max) {
      this.held++;
      this.changed();
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.changed();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.changed();
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.grant(); // the slot passes to the next waiter: `held` stays the same
      else this.held--;
      this.changed();
    };
  }

  private changed(): void {
    this.onChange?.(this.held, this.waiters.length);
  }
}

export type ClientRefusal =
  | 'close-subid'
  | 'req-rate-connection'
  | 'req-rate-ip'
  | 'req-subscriptions-ip'
  | 'neg-open-client'
  | 'connections-ip'
  | 'connections-total';

/** Counters for what the connection limits refused, and the state of the query slots. */
export class ClientLimitMetrics {
  readonly refused: Counter<'reason'>;
  readonly reqsReceived: Counter;
  readonly queriesRunning: Gauge;
  readonly queriesWaiting: Gauge;

  constructor(registry: Registry) {
    this.refused = new Counter({ name: 'relay_client_refusals_total', help: 'Client messages refused by connection limits, by reason', labelNames: ['reason'], registers: [registry] });
    this.reqsReceived = new Counter({ name: 'relay_reqs_received_total', help: 'REQ messages received (before any check)', registers: [registry] });
    this.queriesRunning = new Gauge({ name: 'relay_req_queries_running', help: 'REQ initial queries running now (bounded by limits.max_queries)', registers: [registry] });
    this.queriesWaiting = new Gauge({ name: 'relay_req_queries_waiting', help: 'REQ initial queries waiting for a global slot', registers: [registry] });
  }
}

interface IpEntry {
  bucket: TokenBucket | null;
  /** Open connections from this IP that are not proven peers: what max_connections_per_ip bounds. */
  connections: number;
  /** Open connections from this IP proven to be peers of our network (their own budget, on top). */
  peers: number;
  subscriptions: number;
}

/** One connection's view of its IP's shared limits. */
export interface IpLimits {
  /** Takes a REQ token from the IP's bucket (always true with req_rate_per_ip 0). */
  takeIp(): boolean;
  /** Counts one more open subscription; false (not counted) past max_subscriptions_per_ip unless `force`. */
  addSubscription(force: boolean): boolean;
  removeSubscriptions(count: number): void;
  /** The connection proved itself a peer of our network: it no longer uses its IP's connection budget. */
  becamePeer(): void;
  leave(): void;
}

/**
 * What all connections share: the global query slots, and per client IP one REQ bucket and the count of open
 * subscriptions. An IP's entry lives while it has a connection open, so the map is bounded by the open connections.
 */
export class SharedReqLimits {
  readonly queries: Semaphore;
  private readonly ips = new Map<string, IpEntry>();

  constructor(private readonly limits: RelayLimits, readonly metrics: ClientLimitMetrics) {
    this.queries = new Semaphore(limits.maxQueries, (held, waiting) => {
      metrics.queriesRunning.set(held);
      metrics.queriesWaiting.set(waiting);
    });
  }

  /**
   * Whether one more connection may open, checked before the WebSocket upgrade (so a refused one costs no
   * connection state): null, or why not. `open` is the relay's count of open connections.
   */
  admit(ip: string, open: number): 'connections-ip' | 'connections-total' | null {
    const { maxConnections, maxConnectionsPerIp } = this.limits;
    if (maxConnections > 0 && open >= maxConnections) return 'connections-total';
    if (maxConnectionsPerIp > 0 && (this.ips.get(ip)?.connections ?? 0) >= maxConnectionsPerIp) return 'connections-ip';
    return null;
  }

  join(ip: string): IpLimits {
    const { reqRatePerIp, maxSubscriptionsPerIp } = this.limits;
    let entry = this.ips.get(ip);
    if (!entry) {
      entry = { bucket: reqRatePerIp > 0 ? new TokenBucket(reqRatePerIp, reqRatePerIp * 2) : null, connections: 0, peers: 0, subscriptions: 0 };
      this.ips.set(ip, entry);
    }
    entry.connections++;
    const held = entry;
    let left = false;
    let peer = false;
    return {
      takeIp: () => held.bucket?.take() ?? true,
      addSubscription: (force) => {
        if (!force && maxSubscriptionsPerIp > 0 && held.subscriptions >= maxSubscriptionsPerIp) return false;
        held.subscriptions++;
        return true;
      },
      removeSubscriptions: (count) => {
        held.subscriptions = Math.max(0, held.subscriptions - count);
      },
      becamePeer: () => {
        if (left || peer) return;
        peer = true;
        held.connections--;
        held.peers++;
      },
      leave: () => {
        if (left) return;
        left = true;
        if (peer) held.peers--;
        else held.connections--;
        if (held.connections === 0 && held.peers === 0 && this.ips.get(ip) === held) this.ips.delete(ip);
      },
    };
  }
}

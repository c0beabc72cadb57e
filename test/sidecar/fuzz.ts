/**
 * A small seeded generator of hostile API inputs, for api-fuzz.test.ts. fast-check is not a dependency yet (it
 * would give shrinking); this keeps the same idea: a seed, printed, replays the exact sequence.
 */

/** mulberry32: tiny, fast, good enough to pick test inputs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  constructor(readonly next: () => number) {}

  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Numbers that break naive checks: negative, huge, timer-overflowing, fractional, non-finite as strings. */
  number(): number | string {
    return this.pick<number | string>([
      0, -1, -0.5, 1, 0.5, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e308, -1e308, 1e-300,
      Number.MAX_SAFE_INTEGER, 65535, 65536, 3.14159, 'NaN', 'Infinity', '-Infinity', '1e400', '0x10', '10', '',
      ' 5 ', '5ms', '2147483648ms', '25d', '-3s', '1.5.5s', '9'.repeat(400),
    ]);
  }

  /** Strings: traversal, encodings, control bytes, very long, unicode, injection-looking. */
  string(): string {
    return this.pick([
      '', 'a', 'latency', 'redis', '../../etc/passwd', '..%2f..%2fetc%2fshadow', '/dev/zero', '/etc/shadow',
      'profiles/../../x', 'C:\\Windows\\win.ini', '\u0000', '\r\nX-Injected: 1', '%00', '%E0%A4%A', '💥'.repeat(50),
      'x'.repeat(10_000), '__proto__', 'constructor', 'toString', '${jndi:ldap://x}', '<script>', "' OR 1=1 --",
      '127.0.0.1:0', '127.0.0.1:99999', 'localhost:0', '[::1]:0', '127.0.0.1:-1', ':0', 'ws://127.0.0.1:0/',
      'upstream', 'downstream', 'both', 'sideways', 'tcp', 'ws', 'udp',
    ]);
  }

  /** Any JSON value, wrong types included; depth-limited here, deep nesting comes from deepJson(). */
  value(depth = 0): unknown {
    const k = this.int(depth > 2 ? 5 : 8);
    switch (k) {
      case 0: return this.number();
      case 1: return this.string();
      case 2: return this.chance(0.5);
      case 3: return null;
      case 4: return this.int(100);
      case 5: return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      case 6: return this.object(depth + 1);
      default: return this.deepJson();
    }
  }

  object(depth = 0): Record<string, unknown> {
    const keys = ['name', 'type', 'stream', 'toxicity', 'attributes', 'duration', 'listen', 'upstream', 'enabled', 'protocol',
      'latency', 'jitter', 'rate', 'timeout', 'bytes', 'delay', 'probability', 'mode', 'copies', 'gap', 'max_delay', 'average_size',
      'size_variation', 'sqlstate', 'message', 'severity', 'error', 'new', 'existing', 'target', 'correlation', '__proto__', 'constructor', 'x'];
    const o: Record<string, unknown> = {};
    for (let i = this.int(5); i > 0; i--) o[this.pick(keys)] = this.value(depth + 1);
    return o;
  }

  /** A nested array (the test's JSON.stringify must still cope; deeper ones come from deepText()). */
  deepJson(): unknown {
    const n = this.pick([10, 1000]);
    return JSON.parse('['.repeat(n) + ']'.repeat(n));
  }

  /** JSON text nested deep enough to break recursive code on the other side. */
  deepText(): string {
    const n = this.pick([100_000, 400_000]);
    return `{"attributes":${'['.repeat(n)}${']'.repeat(n)},"type":"latency"}`;
  }

  /** A toxic body: mostly well-shaped with bad values, sometimes anything at all. */
  toxic(types: readonly string[]): unknown {
    if (this.chance(0.2)) return this.value();
    const body: Record<string, unknown> = { type: this.chance(0.9) ? this.pick(types) : this.value() };
    if (this.chance(0.5)) body.name = this.chance(0.7) ? `f${this.int(5)}` : this.value();
    if (this.chance(0.4)) body.stream = this.chance(0.7) ? this.pick(['upstream', 'downstream', 'both']) : this.value();
    if (this.chance(0.4)) body.toxicity = this.chance(0.5) ? this.next() : this.number();
    if (this.chance(0.4)) body.duration = this.number();
    if (this.chance(0.7)) body.attributes = this.chance(0.8) ? this.object() : this.value();
    return body;
  }

  /** A proxy body: loopback listeners only (a fuzz must not open ports to the network). */
  proxy(): unknown {
    if (this.chance(0.2)) return this.value();
    const body: Record<string, unknown> = {
      name: this.chance(0.8) ? `p${this.int(4)}` : this.value(),
      listen: this.chance(0.7) ? '127.0.0.1:0' : this.pick(['127.0.0.1:99999', 'x', '', '127.0.0.1:-1', 'localhost:0', 5, null, '[::1]:0']),
      upstream: this.chance(0.8) ? '127.0.0.1:1' : this.value(),
    };
    if (this.chance(0.4)) body.enabled = this.chance(0.7) ? this.chance(0.5) : this.value();
    if (this.chance(0.3)) body.protocol = this.chance(0.7) ? this.pick(['tcp', 'ws']) : this.value();
    return body;
  }

  /** YAML a profile endpoint may be sent: broken, huge, alias bombs, deep. */
  yaml(): string {
    return this.pick([
      'faults: [',
      'name: x\nfaults:\n  - link: "*"\n    action: delay\n    delay: {latency: 2147483648ms}\n',
      'name: x\nsteps:\n  - at: -1s\n    faults: []\n',
      'name: x\nsteps:\n  - at: 0s\n    every: 1ms\n    duration: 5ms\n    faults: [{link: "*", type: latency}]\n',
      'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
      '['.repeat(5000),
      '- ' + '- '.repeat(2000) + 'x',
      'name: ../../etc/passwd\nfaults: []\n',
      'faults:\n  - link: p0\n    type: reset_peer\n    attributes: {timeout: 0}\n',
      'faults:\n  - link: p0\n    type: partition\n',
      '\u0000\u0001\u0002',
      'x: ' + 'y'.repeat(300_000),
    ]);
  }
}

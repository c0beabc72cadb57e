/**
 * partition: cut the link. New connections are refused (an immediate RST) or
 * black-holed (accepted, never answered, never dialled); existing ones are
 * frozen (data held, bounded by backpressure, and delivered when the partition
 * heals, like TCP retransmission) or reset. New connections are cut whatever
 * the direction: a TCP handshake needs both ways.
 */
import { registerFault } from './registry.js';
import type { Chunk } from './contract.js';

registerFault({
  type: 'partition',
  doc: 'Cut the link: new connections `refuse` (RST) or `blackhole`; existing ones `freeze` (held until healed) or `reset`.',
  protocols: ['tcp', 'ws'],
  attributes: {
    new: { type: 'string', default: 'refuse', oneOf: ['refuse', 'blackhole'], doc: 'what new connections get' },
    existing: { type: 'string', default: 'freeze', oneOf: ['freeze', 'reset'], doc: 'what open connections get' },
  },
  accept(ctx) {
    return ctx.attrs.new === 'blackhole' ? { kind: 'blackhole' } : { kind: 'reset' };
  },
  stage(ctx) {
    // Connections opened during the partition were decided at accept.
    if (!ctx.existing) return undefined;
    if (ctx.attrs.existing === 'reset') {
      queueMicrotask(() => {
        ctx.fired();
        ctx.conn.reset('partition fault');
      });
    }
    let held: Chunk[] = [];
    let endHeld = false;
    return {
      chunk(c) {
        ctx.fired();
        held.push(c);
      },
      end() {
        endHeld = true;
      },
      close(flush) {
        const out = held;
        held = [];
        if (!flush) return;
        for (const c of out) ctx.emit(c);
        if (endHeld) ctx.end();
      },
    };
  },
});

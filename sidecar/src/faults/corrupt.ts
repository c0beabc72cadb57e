/**
 * corrupt: damage data so the receiver must notice.
 *   bytes: flip bits at `rate` per byte (on ws text messages only ASCII bytes,
 *          flipped into other ASCII, so frames stay valid UTF-8);
 *   nostr: in ws ["EVENT", ...] frames alter the event's content or one hex
 *          digit of its sig, keeping the JSON valid, so signature checks fail;
 *   json:  truncate the frame so it is no longer valid JSON.
 */
import { registerFault } from './registry.js';
import type { Chunk } from './contract.js';
import type { Rng } from '../rng.js';

function flipBytes(c: Chunk, rate: number, rng: Rng, textSafe: boolean): Chunk | null {
  if (rate <= 0) return null;
  let out: Buffer | null = null;
  // Geometric skipping: one random draw per flipped byte, not per byte.
  const logq = Math.log(1 - Math.min(rate, 0.999999));
  let i = Math.floor(Math.log(1 - rng.next()) / logq);
  while (i < c.data.length) {
    const b = c.data[i]!;
    if (!textSafe || b < 0x80) {
      out ??= Buffer.from(c.data);
      out[i] = textSafe ? b ^ (1 << Math.floor(rng.next() * 6)) : b ^ (1 << Math.floor(rng.next() * 8));
    }
    i += 1 + Math.floor(Math.log(1 - rng.next()) / logq);
  }
  return out ? { data: out, binary: c.binary } : null;
}

/** Frames larger than this are not parsed (a relay's own message limit is far smaller); they pass untouched. */
export const MAX_NOSTR_FRAME = 1 << 20;

/** A frame that cannot be tampered with within bounds: it passes untouched and is counted. */
class Untamperable extends Error {}

function tamperNostr(c: Chunk, target: string, rng: Rng): Chunk | null {
  if (c.data.length > MAX_NOSTR_FRAME) throw new Untamperable(`frame of ${c.data.length} bytes over ${MAX_NOSTR_FRAME}`);
  let frame: unknown;
  try {
    frame = JSON.parse(c.data.toString('utf8'));
  } catch {
    return null; // not JSON: not an EVENT frame, nothing to tamper with
  }
  if (!Array.isArray(frame) || frame[0] !== 'EVENT') return null;
  const ev = frame[frame.length - 1] as Record<string, unknown> | undefined;
  if (!ev || typeof ev !== 'object') return null;
  if (target === 'sig' && typeof ev.sig === 'string' && ev.sig.length > 0) {
    const pos = Math.floor(rng.next() * ev.sig.length);
    const digit = parseInt(ev.sig[pos]!, 16);
    const flipped = ((Number.isNaN(digit) ? 0 : digit) ^ (1 + Math.floor(rng.next() * 15))).toString(16);
    ev.sig = ev.sig.slice(0, pos) + flipped + ev.sig.slice(pos + 1);
  } else {
    ev.content = `${typeof ev.content === 'string' ? ev.content : ''} [tampered]`;
  }
  let text: string;
  try {
    text = JSON.stringify(frame);
  } catch (err) {
    // Nesting too deep for the stack (JSON.parse copes, JSON.stringify recurses).
    throw new Untamperable(`frame not re-encodable: ${(err as Error).message}`);
  }
  return { data: Buffer.from(text), binary: c.binary };
}

registerFault({
  type: 'corrupt',
  doc: 'Damage data: `mode` bytes (flip bits at `rate` per byte), nostr (alter an EVENT\'s `target` content or sig so it fails verification) or json (truncate the frame), on `probability` of chunks/messages.',
  protocols: ['tcp', 'ws'],
  attributes: {
    mode: { type: 'string', default: 'bytes', oneOf: ['bytes', 'nostr', 'json'], doc: 'how to corrupt' },
    probability: { type: 'number', default: 1, min: 0, max: 1, doc: 'share of chunks/messages affected' },
    rate: { type: 'number', default: 0.01, min: 0, max: 1, doc: 'bytes mode: per-byte flip probability' },
    target: { type: 'string', default: 'content', oneOf: ['content', 'sig'], doc: 'nostr mode: what to alter' },
  },
  stage(ctx) {
    if (ctx.attrs.mode !== 'bytes' && ctx.protocol !== 'ws') return undefined;
    return {
      chunk(c) {
        if (c.control || ctx.rng.next() >= (ctx.attrs.probability as number)) return ctx.emit(c);
        const { mode, target } = ctx.attrs as { mode: string; target: string };
        let out: Chunk | null;
        if (mode === 'bytes') out = flipBytes(c, ctx.attrs.rate as number, ctx.rng, ctx.protocol === 'ws' && !c.binary);
        else if (mode === 'nostr') {
          try {
            out = tamperNostr(c, target, ctx.rng);
          } catch (err) {
            if (!(err instanceof Untamperable)) throw err;
            // Not a protocol violation the sidecar should punish: the relay judges the frame; it is only counted.
            ctx.protocolError(err.message);
            out = null;
          }
        } else out = c.data.length > 1 ? { data: c.data.subarray(0, Math.max(1, Math.floor(c.data.length / 2))), binary: c.binary } : null;
        if (out) ctx.fired();
        ctx.emit(out ?? c);
      },
      close() {},
    };
  },
});

/**
 * Seeded randomness. Every random decision in the sidecar comes from an Rng
 * derived from (sidecar seed, link, fault, connection number, direction), so the
 * same seed and the same traffic replay the same decisions (Toxiproxy's -seed
 * flag never did this).
 */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
}

/** xmur3 string hash: turns a seed key into 32-bit state words. */
function xmur3(str: string): () => number {
  let h = 1779033703 ^ str.length;
  for (let i = 0; i < str.length; i++) {
    h = Math.imul(h ^ str.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  return () => {
    h = Math.imul(h ^ (h >>> 16), 2246822507);
    h = Math.imul(h ^ (h >>> 13), 3266489909);
    return (h ^= h >>> 16) >>> 0;
  };
}

/** sfc32: small, fast, good enough statistically for fault decisions. */
export function rngFromKey(key: string): Rng {
  const seed = xmur3(key);
  let a = seed(), b = seed(), c = seed(), d = seed();
  return {
    next() {
      a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
      let t = (a + b) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      d = (d + 1) | 0;
      t = (t + d) | 0;
      c = (c + t) | 0;
      return (t >>> 0) / 4294967296;
    },
  };
}

/** A fresh random seed when none is configured; it is logged so runs can be replayed. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { finalizeEvent, generateSecretKey, type VerifiedEvent } from 'nostr-tools/pure';

export interface GenerateOptions {
  /** Distinct signing keys, used round-robin (real traffic has many authors). */
  authors?: number;
  kind?: number;
  /** Approximate content size in bytes. */
  contentBytes?: number;
  /** created_at of every event; default now, so relays with created_at limits accept them. */
  createdAt?: number;
  /** Called every `progressEvery` events with the count so far (signing 20k events takes a while). */
  onProgress?: (done: number) => void;
  progressEvery?: number;
  /** Parallel signing only: each event also gets one of this many `t` tags, `topic-<n % topics>`. */
  topics?: number;
}

/** Signs `count` distinct events with nostr-tools; a per-run nonce keeps them distinct across runs too. */
export function generateSignedEvents(count: number, options: GenerateOptions = {}): VerifiedEvent[] {
  const keys = Array.from({ length: Math.max(1, options.authors ?? 50) }, () => generateSecretKey());
  const nonce = randomBytes(8).toString('hex');
  const pad = 'x'.repeat(Math.max(0, (options.contentBytes ?? 120) - 40));
  const createdAt = options.createdAt ?? Math.floor(Date.now() / 1000);
  const every = options.progressEvery ?? 5000;
  const events: VerifiedEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    events[i] = finalizeEvent(
      { kind: options.kind ?? 1, created_at: createdAt, tags: [['t', 'bench']], content: `bench ${nonce} #${i} ${pad}` },
      keys[i % keys.length]!,
    );
    if (options.onProgress && (i + 1) % every === 0) options.onProgress(i + 1);
  }
  return events;
}

/**
 * Same events as generateSignedEvents, signed by `threads` worker threads (nostr-tools signing is ~1-2k/s per core,
 * which dominates a 20k-event run). Each thread uses its own keys.
 */
export async function generateSignedEventsParallel(count: number, options: GenerateOptions & { threads?: number } = {}): Promise<VerifiedEvent[]> {
  const threads = Math.max(1, Math.min(options.threads ?? cpus().length, Math.ceil(count / 500)));
  const nonce = randomBytes(8).toString('hex');
  const pad = 'x'.repeat(Math.max(0, (options.contentBytes ?? 120) - 40));
  const createdAt = options.createdAt ?? Math.floor(Date.now() / 1000);
  const per = Math.ceil(count / threads);
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const offset = t * per;
      const n = Math.max(0, Math.min(per, count - offset));
      return new Promise<VerifiedEvent[]>((resolve, reject) => {
        const w = new Worker(new URL('./sign-worker.mjs', import.meta.url), {
          workerData: { count: n, authors: Math.max(1, Math.ceil((options.authors ?? 50) / threads)), kind: options.kind ?? 1, createdAt, nonce, offset, pad, topics: options.topics ?? 0 },
        });
        w.once('message', (evs: VerifiedEvent[]) => {
          resolve(evs);
          void w.terminate();
        });
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`sign worker exited with code ${code}`)));
      });
    }),
  );
  const events = parts.flat();
  options.onProgress?.(events.length);
  return events;
}

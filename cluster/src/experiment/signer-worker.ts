/** A signing thread for the workload: Schnorr signatures cost ~1-4 ms each, too much for the runner's event loop at 200/s. */
import { parentPort } from 'node:worker_threads';
import { finalizeEvent } from 'nostr-tools/pure';
import { hexToBytes } from 'nostr-tools/utils';

interface Job {
  id: number;
  key: string;
  template: { kind: number; created_at: number; tags: string[][]; content: string };
}

parentPort!.on('message', (jobs: Job[]) => {
  parentPort!.postMessage(jobs.map((j) => ({ id: j.id, event: finalizeEvent(j.template, hexToBytes(j.key)) })));
});

/**
 * RespTracker joined mid-stream, driven directly: the marker's reply is found and cut out wherever the server's
 * reads split it, replies before it pass untouched and unheld, and queued errors land exactly in its place.
 */
import t from 'tap';
import { RespTracker } from '../../sidecar/src/protocols/resp-tracker.js';

const ERR = Buffer.from('-ERR injected\r\n');

function run(splitAt: number[], pubsub: boolean): { out: string; pushesBeforeMarker: string } {
  const pushed: Buffer[] = [];
  const tracker = new RespTracker((d) => pushed.push(Buffer.from(d)), () => { throw new Error('overflow'); }, true);
  const marker = tracker.marker!;
  const arg = marker.command.toString('latin1').split('\r\n')[4]!;
  // Client side: an old command forwarded untracked, then the marker, then nothing forwarded (GET answered by us).
  tracker.observeCommands(Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\na\r\n'));
  tracker.observeCommands(marker.command);
  tracker.inject(ERR);
  const markerReply = pubsub ? `*2\r\n$4\r\npong\r\n$${arg.length}\r\n${arg}\r\n` : `$${arg.length}\r\n${arg}\r\n`;
  const server = Buffer.from(`$5\r\nalice\r\n${markerReply}:7\r\n`);
  let from = 0;
  let before = '';
  for (const at of [...splitAt, server.length]) {
    tracker.fromServer(server.subarray(from, at));
    from = at;
    if (at <= 11) before = Buffer.concat(pushed).toString('latin1');
  }
  return { out: Buffer.concat(pushed).toString('latin1'), pushesBeforeMarker: before };
}

t.test('every split of the server stream gives the same client stream', async (t) => {
  for (const pubsub of [false, true]) {
    const len = 80; // past the end of the server stream (65 bytes, 79 in pub/sub mode)
    let bad = 0;
    for (let a = 1; a < len; a++) {
      for (const b of [a + 1, a + 5, a + 17]) {
        const { out } = run(b < len ? [a, b] : [a], pubsub);
        if (out !== '$5\r\nalice\r\n-ERR injected\r\n:7\r\n') {
          bad++;
          if (bad < 3) t.fail(`split at ${a},${b} (pubsub ${pubsub}): ${JSON.stringify(out)}`);
        }
      }
    }
    t.equal(bad, 0, `pubsub=${pubsub}: the marker reply is cut out at every split, the error in its place`);
  }
});

t.test('a complete reply ahead of the marker is never held back', async (t) => {
  // The read ends right after alice's reply: it must reach the client now, not wait for the marker's.
  const { pushesBeforeMarker } = run([11], false);
  t.equal(pushesBeforeMarker, '$5\r\nalice\r\n');
});

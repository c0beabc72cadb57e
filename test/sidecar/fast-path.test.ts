/**
 * The tcp fast path: a link with no fault writes each read straight to the other socket; a fault added or removed
 * under continuous traffic switches into and out of the fault chain between two reads, without losing or reordering
 * a byte. The stream is a counter (byte i of the stream is a function of i), checked as it comes back from a real
 * TCP echo server, so a lost, duplicated or reordered byte shows where it happened.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { call, echoServer, linkPort, sidecar, sleep } from './helpers.js';
import type { Connection } from '../../sidecar/src/links/connection.js';

/** Byte i of the test stream: the little-endian bytes of the uint32 counter i >> 2, so order matters everywhere. */
function fill(buf: Buffer, offset: number): void {
  for (let i = 0; i < buf.length; i++) {
    const pos = offset + i;
    buf[i] = ((pos >>> 2) >>> ((pos & 3) * 8)) & 0xff;
  }
}

t.test('toggling a latency fault under continuous traffic loses and reorders nothing', async (t) => {
  const echo = await echoServer();
  const sc = await sidecar({ links: [{ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(async () => {
    await sc.close();
    await echo.close();
  });
  const link = sc.sidecar.links.get('echo')!;
  const s = net.connect({ port: linkPort(sc, 'echo'), host: '127.0.0.1', noDelay: true });
  await once(s, 'connect');
  for (let i = 0; i < 50 && link.conns.size === 0; i++) await sleep(10);
  const conn = [...link.conns][0] as Connection;
  t.ok(conn.fastUp && conn.fastDown, 'no fault: both directions on the fast path');

  let received = 0;
  let mismatch: string | null = null;
  const expect = Buffer.alloc(64 * 1024);
  s.on('data', (d: Buffer) => {
    if (mismatch) return;
    for (let off = 0; off < d.length; off += expect.length) {
      const part = d.subarray(off, off + expect.length);
      fill(expect, received);
      const want = expect.subarray(0, part.length);
      if (!part.equals(want)) {
        let i = 0;
        while (part[i] === want[i]) i++;
        mismatch = `byte ${received + i}: got ${part[i]}, expected ${want[i]}`;
        return;
      }
      received += part.length;
    }
  });

  let sent = 0;
  let toggles = 0;
  let stop = false;
  const MIN_BYTES = 16 * 1024 * 1024;
  const writer = (async () => {
    const chunk = Buffer.alloc(48 * 1024 + 7); // odd size: writes never line up with the counter's words
    while (!mismatch && (sent < MIN_BYTES || !stop)) {
      fill(chunk, sent);
      sent += chunk.length;
      if (!s.write(chunk)) await once(s, 'drain');
      else if (sent > MIN_BYTES) await sleep(1); // enough for the check: keep the stream going, gently (shared box)
    }
  })();

  const states: string[] = [];
  while (toggles < 60 && !mismatch) {
    const r = await call(sc.apiUrl, 'POST', '/proxies/echo/toxics', { name: 'lat', type: 'latency', stream: 'both', attributes: { latency: 2, jitter: 1 } });
    t.equal(r.status, 200, 'added');
    if (conn.fastUp || conn.fastDown) states.push(`toggle ${toggles}: fast path while the fault is on`);
    await sleep(Math.floor(Math.random() * 12));
    await call(sc.apiUrl, 'DELETE', '/proxies/echo/toxics/lat');
    if (!conn.fastUp || !conn.fastDown) states.push(`toggle ${toggles}: still in the chain after the last fault went`);
    await sleep(Math.floor(Math.random() * 12));
    toggles++;
  }
  stop = true;
  await writer;
  for (let i = 0; i < 3000 && received < sent && !mismatch; i++) await sleep(10);
  s.destroy();

  t.equal(mismatch, null, 'every byte came back in order');
  t.equal(received, sent, `all ${sent} bytes came back`);
  t.same(states, [], 'in the chain exactly while the fault was on');
  const m = (await call(sc.apiUrl, 'GET', '/metrics')).text;
  const fired = Number(/chaos_sidecar_faults_fired_total\{link="echo",type="latency"\} (\d+)/.exec(m)?.[1] ?? 0);
  t.ok(fired > 0, `the fault chain carried traffic (${fired} chunks delayed over ${toggles} toggles)`);
});

t.test('a slow reader behind a fast upstream gets every byte intact (the reused upstream read buffer is never overwritten under a pending write)', async (t) => {
  // The server writes a counter stream in reads of every size (1 byte to 64 KiB+) as fast as the sidecar takes it;
  // the client stops reading for a while every MiB, so the sidecar's writes to it are left pending again and again.
  const TOTAL = 24 * 1024 * 1024;
  const sizes = [1, 100, 3000, 16 * 1024, 40_000, 64 * 1024 + 3, 7];
  const server = net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => {});
    void (async () => {
      let sent = 0;
      for (let i = 0; sent < TOTAL && !s.destroyed; i++) {
        const chunk = Buffer.alloc(Math.min(sizes[i % sizes.length]!, TOTAL - sent));
        fill(chunk, sent);
        sent += chunk.length;
        if (!s.write(chunk)) await once(s, 'drain');
        else if (i % 5 === 0) await new Promise((r) => setImmediate(r)); // small reads on the sidecar too
      }
      s.end();
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sc = await sidecar({ links: [{ name: 'src', listen: '127.0.0.1:0', upstream: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, protocol: 'tcp', enabled: true }] });
  t.teardown(async () => {
    await sc.close();
    await new Promise((r) => server.close(r));
  });
  const s = net.connect({ port: linkPort(sc, 'src'), host: '127.0.0.1' });
  let received = 0;
  let nextPause = 1 << 20;
  let mismatch: string | null = null;
  const expect = Buffer.alloc(64 * 1024);
  s.on('data', (d: Buffer) => {
    if (mismatch) return;
    for (let off = 0; off < d.length; off += expect.length) {
      const part = d.subarray(off, off + expect.length);
      fill(expect, received);
      const want = expect.subarray(0, part.length);
      if (!part.equals(want)) {
        let i = 0;
        while (part[i] === want[i]) i++;
        mismatch = `byte ${received + i}: got ${part[i]}, expected ${want[i]}`;
        return;
      }
      received += part.length;
    }
    if (received >= nextPause) {
      nextPause += 1 << 20;
      s.pause();
      setTimeout(() => s.resume(), 15);
    }
  });
  await new Promise<void>((resolve) => {
    s.on('end', resolve);
    s.on('close', () => resolve());
  });
  t.equal(mismatch, null, 'every byte arrived in order, none overwritten');
  t.equal(received, TOTAL, `all ${TOTAL} bytes arrived`);
});

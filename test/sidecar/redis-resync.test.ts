/**
 * RESP tracking runs only while redis_error needs it. A connection with no protocol-aware fault is on the fast path
 * (nothing parsed); redis_error added mid-stream synchronises with a PING marker the server answers in order, the
 * marker's reply never reaches the client, and the connection goes back to the fast path once the fault is gone and
 * its errors are out. Real Redis at 127.0.0.1:6379, raw sockets so every byte the client gets is checked.
 */
import t from 'tap';
import net from 'node:net';
import { Redis } from 'ioredis';
import { addToxic, call, connect, linkPort, sidecar, sleep } from './helpers.js';
import { findCommandStart } from '../../sidecar/src/protocols/resync.js';
import type { Connection } from '../../sidecar/src/links/connection.js';

const sc = await sidecar({ links: [{ name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379', protocol: 'tcp', enabled: true }] });
t.teardown(() => sc.close());
t.afterEach(async () => {
  await call(sc.apiUrl, 'POST', '/reset');
});
const cmd = (...args: string[]) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);

/** Everything a raw socket receives, and a wait for a pattern in it. */
function recorder(s: net.Socket) {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return {
    text: () => Buffer.concat(parts).toString('latin1'),
    async until(re: RegExp, ms = 5000): Promise<string> {
      for (let i = 0; i < ms / 10 && !re.test(Buffer.concat(parts).toString('latin1')); i++) await sleep(10);
      return Buffer.concat(parts).toString('latin1');
    },
  };
}

async function newestConn(): Promise<Connection> {
  const link = sc.sidecar.links.get('redis')!;
  for (let i = 0; i < 100; i++) {
    const c = [...link.conns].at(-1);
    if (c) return c as Connection;
    await sleep(10);
  }
  throw new Error('no connection');
}

t.test('no fault: nothing is tracked; redis_error mid-stream syncs, answers in order, hides its marker, then lets go', async (t) => {
  const s = await connect(linkPort(sc, 'redis'));
  const rec = recorder(s);
  s.write(cmd('PING'));
  await rec.until(/\+PONG\r\n/);
  const conn = await newestConn();
  t.ok(conn.fastUp && conn.fastDown, 'fast path before any fault');

  await addToxic(sc, 'redis', { name: 'loading', type: 'redis_error' });
  t.notOk(conn.fastUp || conn.fastDown, 'tracking while redis_error is on');
  s.write(Buffer.concat([cmd('GET', 'sidecar-test:resync:none'), cmd('ECHO', 'x')]));
  const got = await rec.until(/LOADING[^\n]*\n[^]*LOADING[^\n]*\n/);
  t.equal(got, '+PONG\r\n-LOADING Redis is loading the dataset in memory\r\n-LOADING Redis is loading the dataset in memory\r\n', 'two errors, no marker reply');
  t.notMatch(got, /chaos-sidecar-sync/, 'the marker reply never reaches the client');

  await call(sc.apiUrl, 'DELETE', '/proxies/redis/toxics/loading');
  s.write(cmd('ECHO', 'back'));
  t.match(await rec.until(/back\r\n$/), /\$4\r\nback\r\n$/, 'the server answers again');
  t.ok(conn.fastUp && conn.fastDown, 'fast path again once the fault is gone');
  s.destroy();
});

t.test('redis_error removed before it saw a command: back on the fast path at once', async (t) => {
  const s = await connect(linkPort(sc, 'redis'));
  const rec = recorder(s);
  s.write(cmd('PING'));
  await rec.until(/\+PONG\r\n/);
  const conn = await newestConn();
  await addToxic(sc, 'redis', { name: 'loading', type: 'redis_error' });
  await call(sc.apiUrl, 'DELETE', '/proxies/redis/toxics/loading');
  t.ok(conn.fastUp && conn.fastDown, 'no marker was sent, so nothing is waited for');
  s.write(cmd('ECHO', 'still'));
  t.match(await rec.until(/still\r\n$/), /\$5\r\nstill\r\n$/);
  s.destroy();
});

t.test('mid-stream: a command half sent before the fault and a blocked BLPOP are answered by the server first', async (t) => {
  const key = `sidecar-test:resync:${process.pid}:${Date.now()}`;
  const s = await connect(linkPort(sc, 'redis'));
  const rec = recorder(s);
  s.write(cmd('PING'));
  await rec.until(/\+PONG\r\n/);
  const blpop = cmd('BLPOP', `${key}:empty`, '1');
  s.write(blpop.subarray(0, blpop.length - 4)); // half of it: the server waits for the rest
  await sleep(50);
  await addToxic(sc, 'redis', { name: 'loading', type: 'redis_error', attributes: { error: 'ERR injected' } });
  s.write(Buffer.concat([blpop.subarray(blpop.length - 4), cmd('GET', key)]));
  const got = await rec.until(/ERR injected\r\n/);
  t.equal(got, '+PONG\r\n*-1\r\n-ERR injected\r\n', 'BLPOP times out (its own reply, after 1 s), then the error for GET');
  s.destroy();
});

t.test('a connection opened while redis_error is on is tracked from byte 0 (no marker needed)', async (t) => {
  await addToxic(sc, 'redis', { name: 'oom', type: 'redis_error', attributes: { error: 'OOM no' } });
  const s = await connect(linkPort(sc, 'redis'));
  const rec = recorder(s);
  s.write(Buffer.concat([cmd('PING'), Buffer.from('PING\r\n'), cmd('GET', 'a')]));
  t.equal(await rec.until(/(-OOM no\r\n){3}/), '-OOM no\r\n-OOM no\r\n-OOM no\r\n', 'inline commands answered too');
  s.destroy();
});

t.test('pub/sub mode (RESP2): the marker is answered as a pong array and cut out', async (t) => {
  const s = await connect(linkPort(sc, 'redis'));
  const rec = recorder(s);
  s.write(cmd('SUBSCRIBE', `sidecar-test:resync:chan:${process.pid}`));
  await rec.until(/:1\r\n$/);
  const before = rec.text();
  await addToxic(sc, 'redis', { name: 'loading', type: 'redis_error', attributes: { error: 'ERR sub' } });
  s.write(cmd('PING'));
  const got = await rec.until(/ERR sub\r\n/);
  t.equal(got.slice(before.length), '-ERR sub\r\n', 'only the error, no pong array for the marker');
  s.destroy();
});

t.test('ioredis keeps matching replies across add and remove of redis_error under a steady load', async (t) => {
  const r = new Redis({ host: '127.0.0.1', port: linkPort(sc, 'redis'), db: 11, maxRetriesPerRequest: 0, lazyConnect: true, enableReadyCheck: false });
  await r.connect();
  t.teardown(() => r.disconnect());
  const key = `sidecar-test:resync:steady:${process.pid}`;
  await r.set(key, 'v');
  let wrong = 0;
  let errors = 0;
  let ok = 0;
  let stop = false;
  const load = (async () => {
    while (!stop) {
      const tag = String(Math.random());
      const res = await r.pipeline().echo(tag).get(key).echo(tag).exec();
      for (const [i, [err, v]] of res!.entries()) {
        if (err) errors++;
        else if (v !== (i === 1 ? 'v' : tag)) wrong++;
        else ok++;
      }
    }
  })();
  for (let i = 0; i < 20; i++) {
    await addToxic(sc, 'redis', { name: 'loading', type: 'redis_error' });
    await sleep(15);
    await call(sc.apiUrl, 'DELETE', '/proxies/redis/toxics/loading');
    await sleep(15);
  }
  stop = true;
  await load;
  t.equal(wrong, 0, `no reply given to another command (${ok} right, ${errors} injected errors)`);
  t.ok(errors > 0 && ok > 0, 'both errors and real replies were seen');
  await r.del(key);
});

t.test('findCommandStart: a boundary after a newline with a well-formed header; half commands are not one', async (t) => {
  t.equal(findCommandStart(cmd('GET', 'k'), -1), 0, 'first read of the fault');
  t.equal(findCommandStart(cmd('GET', 'k'), 0x41), -1, 'not after a newline: inside something');
  const tail = Buffer.from('ey\r\n');
  t.equal(findCommandStart(Buffer.concat([tail, cmd('PING')]), -1), tail.length, 'rest of a half-sent command skipped');
  t.equal(findCommandStart(Buffer.from('*2\r\n$3\r\nGE'), -1), -1, 'an incomplete header is not trusted');
  t.equal(findCommandStart(Buffer.from('*2\r\n$3\r\n1ET\r\n'), -1), -1, 'a command name starts with a letter');
  t.equal(findCommandStart(Buffer.from('$3\r\nabc\r\n'), -1), -1, 'a bulk item is not a command');
});

/**
 * The last-resort guard: an exception while handling one connection (here a fault type whose code throws, registered
 * through the registry like any fault file) closes that connection, is logged and counted, and leaves the process,
 * the API and every other connection alone - on the socket's own event and from a fault's timer.
 */
import t from 'tap';
import { registerFault } from '../../sidecar/src/faults/registry.js';
import { call, connect, echoServer, outcome, portOf, roundTrip, sidecar } from './helpers.js';

registerFault({
  type: 'test_throw',
  doc: 'test only: throws on a chunk containing "boom"',
  protocols: ['tcp', 'ws'],
  attributes: {},
  stage(ctx) {
    return {
      chunk(c) {
        if (c.data.includes('boom')) throw new Error('fault bug');
        ctx.emit(c);
      },
      close() {},
    };
  },
});

const echo = await echoServer();
const sc = await sidecar({ links: [{ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}`, protocol: 'tcp', enabled: true }] });
t.teardown(async () => {
  await sc.close();
  await echo.close();
});
const port = () => portOf(sc.sidecar.links.get('echo')!.spec().listen);
const linkErrors = async () => Number(/chaos_sidecar_link_errors_total\{link="echo"\} (\d+)/.exec((await call(sc.apiUrl, 'GET', '/metrics')).text)?.[1] ?? 0);

t.test('an exception on a socket event closes only that connection', async (t) => {
  await call(sc.apiUrl, 'POST', '/proxies/echo/toxics', { name: 'thrower', type: 'test_throw', stream: 'upstream' });
  const bystander = await connect(port());
  await roundTrip(bystander, Buffer.from('hello'));
  const victim = await connect(port());
  victim.write('boom');
  t.not((await outcome(victim, 2000)).how, 'open', 'the connection that hit the bug is closed');
  await roundTrip(bystander, Buffer.from('still here'));
  t.pass('another connection still echoes');
  t.equal((await call(sc.apiUrl, 'GET', '/health')).status, 200, 'the API answers');
  t.equal(await linkErrors(), 1, 'counted in chaos_sidecar_link_errors_total');
  bystander.destroy();
  await call(sc.apiUrl, 'POST', '/reset');
});

t.test('an exception reached from a fault timer (latency releasing into a throwing stage) is caught too', async (t) => {
  await call(sc.apiUrl, 'POST', '/proxies/echo/toxics', { name: 'slow', type: 'latency', stream: 'upstream', attributes: { latency: 30 } });
  await call(sc.apiUrl, 'POST', '/proxies/echo/toxics', { name: 'thrower', type: 'test_throw', stream: 'upstream' });
  const victim = await connect(port());
  victim.write('boom');
  t.not((await outcome(victim, 2000)).how, 'open', 'closed');
  t.equal((await call(sc.apiUrl, 'GET', '/health')).status, 200, 'the API answers');
  t.equal(await linkErrors(), 2, 'counted');
  await call(sc.apiUrl, 'POST', '/reset');
});

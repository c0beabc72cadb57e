// The probe's verdicts: an error is an outage at once; one late answer (a busy event loop) is not, two in a row are.
import t from 'tap';
import { pino } from 'pino';
import { DependencyProbe, TIMEOUTS_TO_DOWN } from '../../relay/src/health/dependency-probe.js';

const log = pino({ level: 'silent' });
const never = () => new Promise<void>(() => undefined);

t.test('one timed-out probe keeps the dependency up; the next timeout declares it down', async (t) => {
  t.equal(TIMEOUTS_TO_DOWN, 2);
  let answer: () => Promise<void> = never;
  const probe = new DependencyProbe('db', () => answer(), 1000, log, 30);
  t.equal(await probe.check(), 'up', 'first timeout: still up');
  answer = async () => undefined;
  t.equal(await probe.check(), 'up', 'answered: up, and the count starts over');
  answer = never;
  t.equal(await probe.check(), 'up', 'a single timeout again: up');
  t.equal(await probe.check(), 'down', 'second timeout in a row: down');
  answer = async () => undefined;
  t.equal(await probe.check(), 'up', 'recovers on the next answer');
});

t.test('an error is an outage at once', async (t) => {
  const probe = new DependencyProbe('db', () => Promise.reject(new Error('connect ECONNREFUSED')), 1000, log, 30);
  t.equal(await probe.check(), 'down');
});

t.test("the probe's own timeout error (code 'timeout') counts as a timeout", async (t) => {
  const timeout = Object.assign(new Error('ping timed out after 500 ms'), { code: 'timeout' });
  const probe = new DependencyProbe('db', () => Promise.reject(timeout), 1000, log, 1000);
  t.equal(await probe.check(), 'up');
  t.equal(await probe.check(), 'down');
});

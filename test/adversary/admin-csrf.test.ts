// The admin API against a web page in the operator's browser, driven by real curl (which can send any Origin and
// Host a browser would): CSRF (foreign Origin, CORS-simple text/plain and form bodies), DNS rebinding (foreign
// Host), cross-site loads (Sec-Fetch-Site), and the token on every route but /health. The runbook's own
// `curl -d '{...}'` (no Origin, a form content type) keeps working.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';

const run = promisify(execFile);

/** `curl -s -w '\n%{http_code}' ...`: the body and the status. */
async function curl(...args: string[]): Promise<{ status: number; body: string; json: any }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', ...args]);
  const cut = stdout.lastIndexOf('\n');
  const body = stdout.slice(0, cut);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(stdout.slice(cut + 1)), body, json };
}

let open: RelayProcess;
let locked: RelayProcess;
t.before(async () => {
  [open, locked] = await Promise.all([
    startRelay({ args: ['--admin-allowed-origins', 'http://ops.example:9000'] }),
    startRelay({ args: ['--admin-token', 's3cret'] }),
  ]);
});
t.teardown(async () => {
  await Promise.all([open?.stop(), locked?.stop()]);
  await Promise.all([open?.cleanup(), locked?.cleanup()]);
});

const banned = async (relay: RelayProcess, subject: string, auth: string[] = []) =>
  ((await curl(`http://127.0.0.1:${relay.adminPort}/admin/bans`, ...auth)).json.bans as Array<{ subject: string }>).some((b) => b.subject === subject);

t.test('no token (loopback default): a web page cannot POST (CSRF)', async (t) => {
  const url = `http://127.0.0.1:${open.adminPort}/admin/peers/ban`;
  // What a cross-site <form> or fetch(..., {mode: 'no-cors'}) sends: a CORS-simple request with an Origin.
  for (const [origin, type] of [
    ['http://evil.example', 'text/plain'],
    ['http://evil.example', 'application/x-www-form-urlencoded'],
    ['http://localhost:3000', 'text/plain'], // another local web app is foreign too
    ['null', 'text/plain'], // sandboxed iframes and file:// pages
  ] as const) {
    const res = await curl('-X', 'POST', url, '-H', `Origin: ${origin}`, '-H', `Content-Type: ${type}`, '-d', '{"address": "127.0.0.9"}');
    t.equal(res.status, 403, `Origin ${origin} with ${type} refused`);
    t.match(res.json.error, /Origin/);
  }
  t.notOk(await banned(open, '127.0.0.9'), 'nothing was banned');
  const unban = await curl('-X', 'POST', `http://127.0.0.1:${open.adminPort}/admin/peers/unban`, '-H', 'Origin: http://evil.example', '-d', '{"address": "127.0.0.2"}');
  t.equal(unban.status, 403, 'unban refused too');
  const imported = await curl('-X', 'POST', `http://127.0.0.1:${open.adminPort}/admin/bans/import`, '-H', 'Origin: http://evil.example', '-H', 'Content-Type: application/json', '-d', '{"bans": []}');
  t.equal(imported.status, 403, 'import refused even with a JSON content type (a preflighted fetch never gets CORS headers, but refuse anyway)');
});

t.test('the runbook curl -d (no Origin, form content type) still works', async (t) => {
  const res = await curl('-X', 'POST', `http://127.0.0.1:${open.adminPort}/admin/peers/ban`, '-d', '{"address": "127.0.0.9"}');
  t.equal(res.status, 200, res.body);
  t.ok(await banned(open, '127.0.0.9'), 'banned');
  const viaLocalhost = await curl('-X', 'POST', `http://localhost:${open.adminPort}/admin/peers/unban`, '-d', '{"address": "127.0.0.9"}');
  t.equal(viaLocalhost.status, 200, `curl http://localhost:PORT works: ${viaLocalhost.body}`);
  t.notOk(await banned(open, '127.0.0.9'), 'unbanned');
  const nodeFetch = await fetch(`http://127.0.0.1:${open.adminPort}/admin/peers/ban`, { method: 'POST', body: '{"address": "127.0.0.10"}' });
  t.equal(nodeFetch.status, 200, "Node's fetch (text/plain, sec-fetch-mode: cors, no Origin) is not a browser page");
  await curl('-X', 'POST', `http://127.0.0.1:${open.adminPort}/admin/peers/unban`, '-d', '{"address": "127.0.0.10"}');
  const notJson = await curl('-X', 'POST', `http://127.0.0.1:${open.adminPort}/admin/peers/ban`, '-d', 'address=127.0.0.9');
  t.equal(notJson.status, 400, 'a real form body is not JSON: 400');
});

t.test('an allowed Origin must still send application/json', async (t) => {
  const url = `http://127.0.0.1:${open.adminPort}/admin/peers/ban`;
  const simple = await curl('-X', 'POST', url, '-H', 'Origin: http://ops.example:9000', '-H', 'Content-Type: text/plain', '-d', '{"address": "127.0.0.8"}');
  t.equal(simple.status, 415, `text/plain from a browser refused: ${simple.body}`);
  t.notOk(await banned(open, '127.0.0.8'));
  const json = await curl('-X', 'POST', url, '-H', 'Origin: http://ops.example:9000', '-H', 'Content-Type: application/json', '-d', '{"address": "127.0.0.8"}');
  t.equal(json.status, 200, json.body);
  await curl('-X', 'POST', `http://127.0.0.1:${open.adminPort}/admin/peers/unban`, '-d', '{"address": "127.0.0.8"}');
});

t.test('no token: a foreign Host (DNS rebinding) or a cross-site load cannot read', async (t) => {
  const status = `http://127.0.0.1:${open.adminPort}/admin/status`;
  const rebound = await curl(status, '-H', `Host: attacker.example:${open.adminPort}`);
  t.equal(rebound.status, 403, 'foreign Host refused');
  t.match(rebound.json.error, /Host/);
  t.equal((await curl(`http://127.0.0.1:${open.adminPort}/admin/events/verify-integrity`, '-H', 'Host: attacker.example')).status, 403, 'verify-integrity too');
  for (const host of [`127.0.0.1:${open.adminPort}`, `localhost:${open.adminPort}`, `[::1]:${open.adminPort}`, `127.1.2.3:${open.adminPort}`]) {
    t.equal((await curl(status, '-H', `Host: ${host}`)).status, 200, `Host ${host} allowed`);
  }
  const img = await curl(status, '-H', 'Sec-Fetch-Site: cross-site', '-H', 'Sec-Fetch-Mode: no-cors');
  t.equal(img.status, 403, 'an <img>/<script> load from another site refused');
  t.equal((await curl(status, '-H', 'Sec-Fetch-Site: none')).status, 200, 'the operator typing the URL in the address bar is fine');
  const corsRead = await curl(status, '-H', 'Origin: http://evil.example');
  t.equal(corsRead.status, 403, 'a cross-origin fetch refused');
  t.equal((await curl(`http://127.0.0.1:${open.adminPort}/health`, '-H', 'Host: attacker.example')).status, 200, '/health answers any Host (orchestrator probes)');
});

t.test('with a token: every route but /health needs it', async (t) => {
  const base = `http://127.0.0.1:${locked.adminPort}`;
  for (const path of ['/admin/status', '/admin/events/verify-integrity', '/admin/metrics', '/metrics', '/admin/bans', '/admin/peers', '/admin/events/recent']) {
    const res = await curl(base + path);
    t.equal(res.status, 401, `GET ${path} without the token: 401`);
  }
  t.equal((await curl(base + '/admin/status', '-H', 'Authorization: Bearer wrong')).status, 401, 'a wrong token: 401');
  const ok = await curl(base + '/admin/status', '-H', 'Authorization: Bearer s3cret');
  t.equal(ok.status, 200);
  t.equal(ok.json.mode, 'normal');
  t.equal((await curl(base + '/admin/status', '-H', 'X-Admin-Token: s3cret')).status, 200, 'X-Admin-Token works too');
  t.equal((await curl(base + '/health')).status, 200, '/health is open');
  const withHost = await curl(base + '/admin/status', '-H', 'Authorization: Bearer s3cret', '-H', 'Host: relay-0.relay-peers.svc:8080');
  t.equal(withHost.status, 200, 'a request with the token may name any Host (rebinding pages cannot send the token)');
  const page = await curl('-X', 'POST', base + '/admin/peers/ban', '-H', 'Authorization: Bearer s3cret', '-H', 'Origin: http://evil.example', '-d', '{"address": "127.0.0.7"}');
  t.equal(page.status, 403, 'a foreign Origin is refused even with the token');
  const runbook = await curl('-X', 'POST', base + '/admin/peers/ban', '-H', 'Authorization: Bearer s3cret', '-d', '{"address": "127.0.0.7"}');
  t.equal(runbook.status, 200, runbook.body);
  t.ok(await banned(locked, '127.0.0.7', ['-H', 'Authorization: Bearer s3cret']));
});

t.test('refusals are counted', async (t) => {
  const metrics = await curl(`http://127.0.0.1:${open.adminPort}/metrics`);
  t.equal(metrics.status, 200);
  for (const reason of ['origin', 'host', 'fetch-site', 'content-type']) {
    const line = metrics.body.split('\n').find((l) => l.startsWith(`relay_admin_refused_total{reason="${reason}"}`));
    t.ok(line && Number(line.split(' ').at(-1)) >= 1, `relay_admin_refused_total{reason="${reason}"}: ${line}`);
  }
  const lockedMetrics = await curl(`http://127.0.0.1:${locked.adminPort}/metrics`, '-H', 'Authorization: Bearer s3cret');
  t.match(lockedMetrics.body, /relay_admin_refused_total\{reason="token"\} \d+/);
});

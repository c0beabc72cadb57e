// Configuration: precedence flags > env > YAML > defaults, and clear errors naming the bad key.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../relay/src/config/load.js';
import { DEFAULT_CONFIG } from '../../relay/src/config/schema.js';
import { REPO_ROOT, RELAY_MAIN } from '../helpers/relay-process.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

t.test('flags > env > file > defaults', async (t) => {
  const yaml = file('ok.yaml', 'port: 7100\nadmin_port: 8100\ndb_pool_size: 7\nlimits:\n  max_limit: 600\n');
  let c = loadConfig({ file: yaml });
  t.equal(c.port, 7100, 'file over default');
  t.equal(c.dbPoolSize, 7);
  t.equal(c.limits.maxLimit, 600, 'nested limits');
  t.equal(c.limits.maxSubscriptions, DEFAULT_CONFIG.limits.maxSubscriptions, 'untouched limits keep defaults');
  c = loadConfig({ file: yaml, env: { RELAY_PORT: '7200', RELAY_LIMITS_MAX_LIMIT: '700' } });
  t.equal(c.port, 7200, 'env over file');
  t.equal(c.limits.maxLimit, 700);
  c = loadConfig({ file: yaml, env: { RELAY_PORT: '7200' }, flags: { port: '7300' } });
  t.equal(c.port, 7300, 'flag over env');
  t.equal(c.adminPort, 8100, 'other keys still from the file');
});

t.test('errors name the key, the value and where it came from', async (t) => {
  t.throws(() => loadConfig({ env: { RELAY_DB_POOL_SIZE: 'abc' } }), { message: /db_pool_size must be an integer .*"abc".*RELAY_DB_POOL_SIZE/ });
  t.throws(() => loadConfig({ flags: { port: '70000' } }), { message: /port must be <= 65535.*--port/ });
  t.throws(() => loadConfig({ file: file('unknown.yaml', 'port: 1\npoool_size: 3\n') }), { message: /unknown key "poool_size" \(.*unknown\.yaml:2\)/ });
  t.throws(() => loadConfig({ file: file('type.yaml', 'port: "7777"\n') }), { message: /port must be an integer.*type\.yaml:1/ });
  t.throws(() => loadConfig({ flags: { 'log-level': 'loud' } }), { message: /log_level must be one of/ });
  t.throws(() => loadConfig({ flags: { 'database-url': 'mysql://x' } }), { message: /database_url must start with postgres/ });
  t.throws(() => loadConfig({ flags: { 'admin-host': '0.0.0.0' } }), { message: /admin_token/ }, 'admin API off loopback needs a token');
  t.ok(loadConfig({ flags: { 'admin-host': '0.0.0.0', 'admin-token': 's3cret' } }), 'with a token it is allowed');
  t.throws(() => loadConfig({ flags: { 'rate-limits': 'foo:1' } }), ConfigError, 'bad rate limit rule');
  t.throws(() => loadConfig({ file: join(dir, 'missing.yaml') }), { message: /cannot read/ });
  // REQ catch-up with peers without NIP-77: each bound is a bound.
  t.throws(() => loadConfig({ flags: { 'negentropy-open-timeout-ms': '10' } }), { message: /negentropy_open_timeout_ms must be >= 100/ });
  t.throws(() => loadConfig({ flags: { 'req-catchup-page-size': '100000' } }), { message: /req_catchup_page_size must be <= 5000/ });
  t.throws(() => loadConfig({ env: { RELAY_REQ_CATCHUP_OVERLAP_SECONDS: '-1' } }), { message: /req_catchup_overlap_seconds must be >= 0/ });
  t.equal(loadConfig({ flags: { 'req-catchup-page-size': '20' } }).reqCatchupPageSize, 20);
  // The signature library: one of four names.
  t.equal(DEFAULT_CONFIG.verifier, 'auto');
  t.throws(() => loadConfig({ env: { RELAY_VERIFIER: 'libsecp' } }), { message: /verifier must be one of auto, native, wasm, noble.*RELAY_VERIFIER/ });
  t.equal(loadConfig({ flags: { verifier: 'wasm' } }).verifier, 'wasm');
  t.equal(loadConfig({ file: file('verifier.yaml', 'verifier: noble\n') }).verifier, 'noble');
});

t.test('the CLI exits 2 with the message on stderr', async (t) => {
  const run = spawnSync(process.execPath, [RELAY_MAIN, 'start', '--db-pool-size', 'zero'], { encoding: 'utf8' });
  t.equal(run.status, 2);
  t.match(run.stderr, /^nostr-relay: config: db_pool_size must be an integer/);
  const unknownFlag = spawnSync(process.execPath, [RELAY_MAIN, 'start', '--bogus-flag', '1'], { encoding: 'utf8' });
  t.not(unknownFlag.status, 0, 'unknown flags are refused');
  t.match(unknownFlag.stderr, /bogus-flag/);
});

t.test('an explicit verifier: native that cannot load: only the error on stderr, exit 2', async (t) => {
  // A copy of relay/dist with no native/ beside it, so the addon is missing whether or not `make native` ran here.
  const copy = mkdtempSync(join(tmpdir(), 'relay-no-native-'));
  cpSync(join(REPO_ROOT, 'relay/dist'), join(copy, 'relay/dist'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
  writeFileSync(join(copy, 'package.json'), '{"type":"module"}\n');
  const run = spawnSync(process.execPath, [join(copy, 'relay/dist/main.js'), 'start', '--verifier', 'native', '--port', '0', '--admin-port', '0'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 2, 'exit 2, like any other configuration error');
  t.match(run.stderr, /^nostr-relay: config: verifier native: the libsecp256k1 addon not built/);
  t.equal(run.stderr.trim().split('\n').length, 1, `one line, no usage text: ${run.stderr.slice(0, 300)}`);
  t.equal(run.stdout, '');
});

t.test('peering needs public_url; peer URLs and node ids are validated at start', async (t) => {
  t.throws(() => loadConfig({ flags: { peers: 'ws://127.0.0.1:7001' } }), { message: /public_url is required when peering/ });
  t.throws(() => loadConfig({ flags: { 'peer-node-ids': 'a'.repeat(64) } }), { message: /public_url is required when peering/ }, 'accepting peers is peering too');
  t.ok(loadConfig({ flags: { peers: 'ws://127.0.0.1:7001', 'public-url': 'ws://relay-a.example:7777' } }), 'with public_url it starts');
  t.throws(() => loadConfig({ flags: { peers: 'ws://127.0.0.1:7001', 'public-url': 'http://relay-a.example' } }), { message: /public_url: .* must start with ws:\/\/ or wss:\/\// });
  t.throws(() => loadConfig({ flags: { peers: 'ws://user:pw@127.0.0.1:7001', 'public-url': 'ws://a.example' } }), { message: /peers: .* must not carry credentials/ });
  t.throws(() => loadConfig({ flags: { 'peer-node-ids': 'xyz', 'public-url': 'ws://a.example' } }), { message: /peer_node_ids: "xyz" is not a node id/ });
  t.equal(loadConfig({}).peerDiscovery, false, 'discovery is off by default');
  const run = spawnSync(process.execPath, [RELAY_MAIN, 'start', '--peers', 'ws://127.0.0.1:7001'], { encoding: 'utf8' });
  t.equal(run.status, 2, 'the CLI refuses to start');
  t.match(run.stderr, /public_url is required when peering/);
});

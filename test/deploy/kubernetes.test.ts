// deploy/kubernetes: rendered, validated against the Kubernetes OpenAPI schema (kubernetes-models), and cross-checked
// with the relay's and the sidecar's own config parsers, so a manifest cannot name a setting that does not exist.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { loadConfig } from '../../relay/src/config/load.js';
import { SETTINGS, envNameOf } from '../../relay/src/config/settings.js';
import { ENV as SIDECAR_ENV, parseConfigFile } from '../../sidecar/src/config.js';
import { parseProfile } from '../../sidecar/src/profiles/profile.js';
import { renderProfilesConfigMap } from '../../scripts/k8s-profiles.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const k8s = path.join(root, 'deploy/kubernetes');
type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
type Container = { name: string; command?: string[]; args?: string[]; env?: Array<{ name: string; value?: string }>; restartPolicy?: string; [k: string]: unknown };

function readDocs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Doc).filter(Boolean);
}

/**
 * The subset of kustomize these manifests use (resources, namespace, labels, strategic-merge patches of containers by
 * name). `kubectl kustomize` is used instead when it is installed, and both renderings are compared.
 */
function renderOwn(dir: string): Doc[] {
  const k = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as {
    resources: string[]; namespace?: string; labels?: Array<{ pairs: Record<string, string> }>; patches?: Array<{ path: string }>;
  };
  let docs: Doc[] = [];
  for (const r of k.resources) {
    const p = path.join(dir, r);
    docs.push(...(r.endsWith('.yaml') ? readDocs(p) : renderOwn(p)));
  }
  for (const l of k.labels ?? []) for (const d of docs) (d.metadata as { labels?: Record<string, string> }).labels = { ...(d.metadata as { labels?: Record<string, string> }).labels, ...l.pairs };
  if (k.namespace) docs = docs.map((d) => ({ ...d, metadata: { ...d.metadata, namespace: k.namespace } }));
  for (const patch of k.patches ?? []) {
    for (const pd of readDocs(path.join(dir, patch.path))) {
      const target = docs.find((d) => d.kind === pd.kind && d.metadata.name === pd.metadata.name);
      if (!target) throw new Error(`patch ${patch.path} targets nothing`);
      const spec = (x: Doc) => (x as unknown as { spec: { template: { spec: Record<string, Container[]> } } }).spec.template.spec;
      for (const list of ['initContainers', 'containers']) {
        for (const pc of spec(pd)[list] ?? []) {
          const c = spec(target)[list]?.find((x) => x.name === pc.name);
          if (!c) throw new Error(`patch ${patch.path}: no container ${pc.name}`);
          const env = [...(pc.env ?? []), ...(c.env ?? []).filter((e) => !(pc.env ?? []).some((p) => p.name === e.name))];
          Object.assign(c, { ...pc, env });
        }
      }
    }
  }
  return docs;
}

function render(dir: string): Doc[] {
  const own = renderOwn(dir);
  const kubectl = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (kubectl.status !== 0) return own;
  const real = parseAllDocuments(kubectl.stdout).map((d) => d.toJS() as Doc);
  const key = (d: Doc) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`;
  if (JSON.stringify(real.map(key).sort()) !== JSON.stringify(own.map(key).sort())) throw new Error('kubectl kustomize and the test renderer disagree');
  return real;
}

const MODELS: Record<string, new (d: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service, 'apps/v1/StatefulSet': StatefulSet,
};

const statefulSet = (docs: Doc[]) => docs.find((d) => d.kind === 'StatefulSet') as unknown as {
  spec: { replicas: number; template: { spec: { initContainers: Container[]; containers: Container[] } } };
};
const configData = (docs: Doc[], name: string) => (docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === name) as unknown as { data: Record<string, string> }).data;

for (const overlay of ['base', 'overlays/staging']) {
  t.test(`${overlay}: every resource validates against the Kubernetes schema`, async (t) => {
    const docs = render(path.join(k8s, overlay));
    t.ok(docs.length >= 6, `${docs.length} resources`);
    for (const d of docs) {
      const Model = MODELS[`${d.apiVersion}/${d.kind}`];
      t.ok(Model, `${d.kind} ${d.metadata.name} has a schema model`);
      if (Model) t.doesNotThrow(() => new Model(d as never).validate(), `${d.kind} ${d.metadata.name} is valid`);
    }
    if (overlay === 'overlays/staging') t.ok(docs.every((d) => d.metadata.namespace === 'chaos-staging'), 'staging namespace on every resource');
  });
}

t.test('the schema check catches a broken manifest', async (t) => {
  const docs = render(path.join(k8s, 'base'));
  const bad = structuredClone(statefulSet(docs)) as unknown as { spec: { replicas: unknown } };
  bad.spec.replicas = 'three';
  t.throws(() => new StatefulSet(bad as never).validate(), 'a string replica count is refused');
});

t.test('the chaos sidecar is a native sidecar that owns every dependency link', async (t) => {
  const docs = render(path.join(k8s, 'base'));
  const spec = statefulSet(docs).spec.template.spec;
  const sidecar = spec.initContainers.find((c) => c.name === 'chaos-sidecar')!;
  t.equal(sidecar.restartPolicy, 'Always', 'init container with restartPolicy Always');
  for (const c of [sidecar, spec.containers[0]!]) {
    for (const probe of ['startupProbe', 'livenessProbe'] as const) t.equal((c[probe] as { httpGet: { path: string } }).httpGet.path, '/health', `${c.name} ${probe} on /health`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'k8s-'));
  const file = path.join(dir, 'sidecar.yaml');
  writeFileSync(file, configData(docs, 'sidecar-config')['sidecar.yaml']!);
  const { links } = parseConfigFile(readFileSync(file, 'utf8'), file);
  const replicas = statefulSet(docs).spec.replicas;
  for (let i = 0; i < replicas; i++) t.ok(links.some((l) => l.upstream === `relay-${i}.relay-peers:7777` && l.protocol === 'ws'), `peer link to relay-${i}`);
  for (const name of ['postgres', 'redis']) t.ok(links.some((l) => l.name === name), `${name} link`);
  for (let i = 0; i < replicas; i++) {
    const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === `relay-${i}-chaos`) as unknown as { spec: { selector: Record<string, string> } } | undefined;
    t.equal(svc?.spec.selector['statefulset.kubernetes.io/pod-name'], `relay-${i}`, `sidecar API Service for relay-${i}`);
  }
  const known = new Set(Object.values(SIDECAR_ENV));
  for (const e of sidecar.env ?? []) t.ok(known.has(e.name as never), `sidecar env ${e.name} exists`);
});

t.test('the relay start script yields a configuration the relay accepts, wired through the sidecar', async (t) => {
  const docs = render(path.join(k8s, 'overlays/staging'));
  const spec = statefulSet(docs).spec.template.spec;
  const relay = spec.containers.find((c) => c.name === 'relay')!;
  const sidecarDir = mkdtempSync(path.join(tmpdir(), 'k8s-'));
  const sidecarFile = path.join(sidecarDir, 'sidecar.yaml');
  writeFileSync(sidecarFile, configData(docs, 'sidecar-config')['sidecar.yaml']!);
  const links = parseConfigFile(readFileSync(sidecarFile, 'utf8'), sidecarFile).links;
  const listenOf = (name: string) => links.find((l) => l.name === name)!.listen;

  // Run the script with a stand-in `node` that prints the environment it was exec'd with.
  const bin = mkdtempSync(path.join(tmpdir(), 'k8s-bin-'));
  writeFileSync(path.join(bin, 'node'), '#!/bin/sh\nenv\n');
  chmodSync(path.join(bin, 'node'), 0o755);
  const relayEnvNames = new Set(SETTINGS.map(envNameOf));
  for (const e of relay.env ?? []) if (e.name.startsWith('RELAY_')) t.ok(relayEnvNames.has(e.name), `relay env ${e.name} is a relay setting`);
  const replicas = statefulSet(docs).spec.replicas;
  t.equal((relay.env ?? []).find((e) => e.name === 'NODE_COUNT')?.value, String(replicas), 'NODE_COUNT matches replicas');
  for (let ord = 0; ord < replicas; ord++) {
    const out = execFileSync(relay.command![0]!, [...relay.command!.slice(1), ...relay.args!], {
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, POD_NAME: `relay-${ord}`, POD_NAMESPACE: 'chaos-staging', NODE_COUNT: String(replicas), RELAY_REDIS_URL: 'redis://127.0.0.1:16379/0' },
    });
    const env = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    for (const name of Object.keys(env).filter((n) => n.startsWith('RELAY_'))) t.ok(relayEnvNames.has(name), `exported ${name} is a relay setting`);
    const peers = env.RELAY_PEERS!.split(',');
    t.equal(peers.length, replicas - 1, `relay-${ord} dials every other node`);
    for (const p of peers) {
      const link = links.find((l) => `ws://${l.listen}` === p);
      t.ok(link && link.upstream !== `relay-${ord}.relay-peers:7777`, `${p} is a sidecar peer link to another node`);
    }
    t.equal(new URL(env.RELAY_DATABASE_URL!).host, listenOf('postgres'), 'PostgreSQL through the sidecar');
    t.equal(new URL(env.RELAY_REDIS_URL!).host, listenOf('redis'), 'Redis through the sidecar');
    const cfgDir = mkdtempSync(path.join(tmpdir(), 'k8s-relay-'));
    writeFileSync(path.join(cfgDir, 'config.yaml'), configData(docs, 'relay-config')['config.yaml']!);
    const cfg = loadConfig({ file: path.join(cfgDir, 'config.yaml'), env: { ...env, RELAY_ADMIN_TOKEN: 'x' } });
    t.equal(cfg.publicUrl, `ws://relay-${ord}.relay-peers.chaos-staging.svc.cluster.local:7777`);
    t.equal(cfg.peerDiscovery, false, 'discovery off: peers only through the sidecar');
  }
});

t.test('the profiles ConfigMap is chaos-profiles/, and the staging profile exists and parses', async (t) => {
  t.equal(readFileSync(path.join(k8s, 'base/chaos-profiles.yaml'), 'utf8'), renderProfilesConfigMap(), 'in sync (regenerate: npx tsx scripts/k8s-profiles.ts)');
  const docs = render(path.join(k8s, 'overlays/staging'));
  const sidecar = statefulSet(docs).spec.template.spec.initContainers.find((c) => c.name === 'chaos-sidecar')!;
  const profile = sidecar.env!.find((e) => e.name === SIDECAR_ENV.profile)?.value;
  t.ok(profile, 'staging turns a profile on');
  const text = configData(docs, 'chaos-profiles')[`${profile}.yaml`];
  t.ok(text, `${profile}.yaml is in the ConfigMap`);
  t.doesNotThrow(() => parseProfile(text!, `${profile}.yaml`, profile!));
  const base = statefulSet(render(path.join(k8s, 'base'))).spec.template.spec.initContainers[0]!;
  t.notOk(base.env!.some((e) => e.name === SIDECAR_ENV.profile), 'the base starts idle');
});

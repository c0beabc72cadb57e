/** Writes deploy/kubernetes/base/chaos-profiles.yaml, the ConfigMap holding every file of chaos-profiles/. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function renderProfilesConfigMap(): string {
  const dir = path.join(root, 'chaos-profiles');
  const data: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) data[f] = fs.readFileSync(path.join(dir, f), 'utf8');
  const doc = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'chaos-profiles' }, data };
  return '# Generated from chaos-profiles/ by `npx tsx scripts/k8s-profiles.ts`; test/deploy checks it is in sync.\n' + stringify(doc, { lineWidth: 0 });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(path.join(root, 'deploy/kubernetes/base/chaos-profiles.yaml'), renderProfilesConfigMap());
}

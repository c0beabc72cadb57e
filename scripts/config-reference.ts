// Prints the relay's configuration reference as a Markdown table (pasted into the README; run after adding settings).
import { DEFAULT_CONFIG } from '../relay/src/config/schema.js';
import { SETTINGS, envNameOf, flagNameOf, yamlKeyOf } from '../relay/src/config/settings.js';

const valueAt = (path: string): unknown => path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], DEFAULT_CONFIG);
const show = (v: unknown) => (v === undefined ? '—' : Array.isArray(v) ? (v.length ? v.join(',') : '—') : String(v));

process.stdout.write('| YAML key | env | flag | default | meaning |\n|---|---|---|---|---|\n');
for (const spec of SETTINGS) {
  process.stdout.write(`| \`${yamlKeyOf(spec).join('.')}\` | \`${envNameOf(spec)}\` | \`--${flagNameOf(spec)}\` | \`${show(valueAt(spec.path))}\` | ${spec.describe} |\n`);
}

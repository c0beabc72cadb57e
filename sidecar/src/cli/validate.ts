/** `chaos-sidecar validate FILE...`: check profiles and sidecar configs offline. */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseProfile } from '../profiles/profile.js';
import { parseConfigFile } from '../config.js';
import { DEFAULT_PROFILES_DIR, loadProfile } from '../profiles/loader.js';

/** Returns one line per file; ok=false when any file is invalid. */
export function validateFiles(files: string[]): { ok: boolean; lines: string[] } {
  const lines: string[] = [];
  let ok = true;
  for (const file of files) {
    try {
      const text = fs.readFileSync(file, 'utf8');
      let top: unknown = null;
      try {
        top = parse(text);
      } catch {
        // The real parser below reports the syntax error with its line.
      }
      const isProfile = !!top && typeof top === 'object' && ('faults' in top || 'steps' in top);
      if (isProfile) {
        const p = parseProfile(text, file, path.basename(file).replace(/\.ya?ml$/, ''));
        const n = p.steps.reduce((a, s) => a + s.faults.length, 0);
        lines.push(`${file}: ok (profile ${p.name}, ${p.steps.length} step(s), ${n} fault(s))`);
      } else {
        const c = parseConfigFile(text, file);
        if (typeof c.values.profile === 'string') loadProfile(c.values.profile, (c.values.profilesDir as string | undefined) ?? DEFAULT_PROFILES_DIR);
        lines.push(`${file}: ok (sidecar config, ${c.links.length} link(s))`);
      }
    } catch (err) {
      ok = false;
      lines.push((err as Error).message.startsWith(file) ? (err as Error).message : `${file}: ${(err as Error).message}`);
    }
  }
  return { ok, lines };
}

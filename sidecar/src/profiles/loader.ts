/** Finding and reading profiles: by name in the profiles directory, or by path. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProfile, type Profile } from './profile.js';

/** chaos-profiles/ at the repository root, wherever the sidecar is started from. */
export const DEFAULT_PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../chaos-profiles');

export class ProfileNotFound extends Error {}

export function profilePath(ref: string, dir: string): string {
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) return path.resolve(ref);
  if (!/^[\w.-]+$/.test(ref)) throw new ProfileNotFound(`bad profile name ${JSON.stringify(ref)}`);
  for (const ext of ['.yaml', '.yml']) {
    const p = path.join(dir, ref + ext);
    if (fs.existsSync(p)) return p;
  }
  throw new ProfileNotFound(`profile not found: ${ref} (looked in ${dir})`);
}

export function loadProfile(ref: string, dir: string): Profile {
  const file = profilePath(ref, dir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProfileNotFound(`cannot read profile ${file}: ${(err as Error).message}`);
  }
  return parseProfile(text, path.relative(process.cwd(), file) || file, path.basename(file).replace(/\.ya?ml$/, ''));
}

export function listProfiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

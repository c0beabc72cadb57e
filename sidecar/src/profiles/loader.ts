/** Finding and reading profiles: by name in the profiles directory, or by path. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProfile, type Profile } from './profile.js';

/** chaos-profiles/ at the repository root, wherever the sidecar is started from. */
export const DEFAULT_PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../chaos-profiles');

export class ProfileNotFound extends Error {}
/** A profile name that could not name a file in the profiles directory (a 400, not a 404). */
export class BadProfileName extends Error {}

/** Profiles are small YAML files; anything larger is refused before it is read. */
export const MAX_PROFILE_BYTES = 256 * 1024;
const PROFILE_NAME = /^[A-Za-z0-9][\w-]{0,127}$/;

/**
 * A profile by name, inside `dir` only: no separators, no dots, no traversal; a regular file. This is what the
 * API uses, since names there come from the network.
 */
export function namedProfilePath(name: string, dir: string): string {
  if (!PROFILE_NAME.test(name)) throw new BadProfileName(`bad profile name ${JSON.stringify(name.slice(0, 64))}: letters, digits, "_" and "-" only`);
  for (const ext of ['.yaml', '.yml']) {
    const p = path.join(dir, name + ext);
    if (fs.existsSync(p)) return p;
  }
  throw new ProfileNotFound(`profile not found: ${name}`);
}

/** A profile by name or, for the operator's own command line and config file, by path. */
export function profilePath(ref: string, dir: string): string {
  if (ref.includes('/') || /\.ya?ml$/.test(ref)) return path.resolve(ref);
  return namedProfilePath(ref, dir);
}

/** Reads a regular file of at most MAX_PROFILE_BYTES (a device, FIFO or huge file is refused without blocking). */
function readProfileFile(file: string): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ProfileNotFound(`profile ${path.basename(file)} is not a regular file`);
    if (st.size > MAX_PROFILE_BYTES) throw new ProfileNotFound(`profile ${path.basename(file)} is larger than ${MAX_PROFILE_BYTES} bytes`);
    return fs.readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof ProfileNotFound) throw err;
    throw new ProfileNotFound(`cannot read profile ${path.basename(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function loadFrom(file: string): Profile {
  return parseProfile(readProfileFile(file), path.relative(process.cwd(), file) || file, path.basename(file).replace(/\.ya?ml$/, ''));
}

/** By name or path: the CLI and the config file (trusted: the operator's own). */
export function loadProfile(ref: string, dir: string): Profile {
  return loadFrom(profilePath(ref, dir));
}

/** By name inside the profiles directory only: every API route. */
export function loadNamedProfile(name: string, dir: string): Profile {
  return loadFrom(namedProfilePath(name, dir));
}

export function listProfiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

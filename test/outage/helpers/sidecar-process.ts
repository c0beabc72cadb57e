import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../helpers/relay-process.js';

export interface SidecarProcess {
  api: string;
  /** Link name → the loopback port it listens on. */
  ports: Record<string, number>;
  /** Adds a Toxiproxy toxic to a link; returns its name. */
  addToxic(link: string, toxic: { type: string; name?: string; stream?: string; attributes?: Record<string, unknown> }): Promise<string>;
  removeToxic(link: string, name: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `node sidecar/dist/main.js start --config FILE --api-port 0` with tcp links on ephemeral ports. */
export async function startSidecar(links: Array<{ name: string; upstream: string }>): Promise<SidecarProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'outage-sidecar-'));
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(
    file,
    ['node: outage', 'log_level: warn', 'links:', ...links.map((l) => `  - { name: ${l.name}, listen: 127.0.0.1:0, upstream: ${l.upstream}, protocol: tcp }`)].join('\n') + '\n',
  );
  const child = spawn(process.execPath, [join(REPO_ROOT, 'sidecar/dist/main.js'), 'start', '--config', file, '--api-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar not ready: ${out} ${err}`)), 15_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('chaos-sidecar ready'));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code) => reject(new Error(`sidecar exited (${code}): ${err}`)));
  });
  const api = /api=(\S+)/.exec(ready)![1]!;
  const ports: Record<string, number> = {};
  for (const part of /links=(\S+)/.exec(ready)![1]!.split(',')) {
    const m = /^([\w.-]+)=[^:]+:(\d+)->/.exec(part);
    if (m) ports[m[1]!] = Number(m[2]);
  }
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(api + path, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`sidecar ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    api,
    ports,
    async addToxic(link, toxic) {
      const created = (await call('POST', `/proxies/${link}/toxics`, toxic)) as { name: string };
      return created.name;
    },
    async removeToxic(link, name) {
      await call('DELETE', `/proxies/${link}/toxics/${name}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

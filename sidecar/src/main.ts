#!/usr/bin/env node
/** chaos-sidecar CLI entry point. */
import { runCli } from './cli/cli.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`chaos-sidecar: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);

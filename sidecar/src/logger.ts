import { pino, type Logger } from 'pino';

/** JSON logs on stderr (stdout is kept for CLI output); one child logger per component. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'chaos-sidecar' } }, pino.destination(2));
}

export type { Logger };

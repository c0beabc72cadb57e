import { pino, type Logger } from 'pino';

/** Root JSON logger; components take `logger.child({ component })`. Logs go to stdout, one JSON object a line. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...base }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };

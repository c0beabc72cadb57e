import { StorageError } from './types.js';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Maps a pg/network error to a StorageError code; anything unknown stays a generic 'database' failure. */
export function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let mapped = 'database';
  if (CONNECTION_CODES.has(code)) mapped = 'connection';
  else if (code === '57P01' || code === '57P02') mapped = 'admin-shutdown';
  else if (code === '57P03') mapped = 'unavailable';
  else if (code === '53300' || code === '53400') mapped = 'too-many-connections';
  else if (code === '57014') mapped = 'statement-timeout';
  else if (code.startsWith('08')) mapped = 'connection';
  else if (/timeout exceeded when trying to connect/i.test(message)) mapped = 'pool-exhausted';
  else if (/connection timeout|Query read timeout/i.test(message)) mapped = 'timeout';
  else if (/Connection terminated|not queryable|Client was closed|Cannot use a pool after calling end/i.test(message)) mapped = 'connection';
  return new StorageError(`${what}: ${message}`, mapped, { cause: err });
}

/** Errors caused by the data of some event rather than by the database being unwell. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

/** PostgreSQL cancelled the statement: statement_timeout (or a cancel request). */
export function isStatementTimeout(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '57014';
}

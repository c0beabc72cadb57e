/** CLI exit codes: 0 ok, 1 the sidecar or its API failed/refused, 2 bad usage or invalid file. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  constructor(message: string, readonly code = EXIT_FAILURE) {
    super(message);
  }
}

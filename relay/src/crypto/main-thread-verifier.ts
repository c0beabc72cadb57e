import type { HexVerify } from './backends.js';
import type { SignatureVerifier } from './types.js';

/**
 * Verifies synchronously on the calling (main) thread with any backend: no worker round trip, but every
 * verification holds the event loop (see docs/ARCHITECTURE.md for when that is the better trade).
 */
export class MainThreadVerifier implements SignatureVerifier {
  private closed = false;
  private verifyHex: HexVerify | undefined;
  private readonly loading: Promise<HexVerify> | undefined;

  /** `verify` may be a promise (the WASM backend loads asynchronously); calls wait for it. */
  constructor(
    readonly backend: string,
    verify: HexVerify | Promise<HexVerify>,
  ) {
    if (typeof verify === 'function') this.verifyHex = verify;
    else {
      this.loading = verify.then((fn) => (this.verifyHex = fn));
      // A load failure is reported to the callers that wait for it, not as an unhandled rejection.
      this.loading.catch(() => {});
    }
  }

  async verify(idHex: string, pubkeyHex: string, sigHex: string): Promise<boolean> {
    const fn = this.verifyHex ?? (await this.load());
    this.assertOpen();
    return fn(idHex, pubkeyHex, sigHex);
  }

  async verifyMany(items: Array<{ id: string; pubkey: string; sig: string }>): Promise<boolean[]> {
    const fn = this.verifyHex ?? (await this.load());
    this.assertOpen();
    return items.map((it) => (it ? fn(it.id, it.pubkey, it.sig) : false));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private load(): Promise<HexVerify> {
    this.assertOpen();
    return this.loading!;
  }

  private assertOpen(): void {
    // Using a closed verifier is a programming error, not bad input, so it is reported rather than answered false.
    if (this.closed) throw new Error('verifier is closed');
  }
}

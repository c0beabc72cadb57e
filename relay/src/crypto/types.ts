/** Verifies BIP-340 Schnorr signatures over 32-byte event ids. */
export interface SignatureVerifier {
  /** Hex inputs as they arrive in an event. Resolves false for any invalid signature or malformed input; never throws for bad input. */
  verify(idHex: string, pubkeyHex: string, sigHex: string): Promise<boolean>;
  /** Verifies many at once (one round trip to a worker per chunk). */
  verifyMany(items: Array<{ id: string; pubkey: string; sig: string }>): Promise<boolean[]>;
  close(): Promise<void>;
}

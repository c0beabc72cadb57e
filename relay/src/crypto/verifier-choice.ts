/** Values of the `verifier` setting (kept free of imports so the config code does not load any crypto library). */
export const VERIFIER_CHOICES = ['auto', 'native', 'wasm', 'noble'] as const;
/** `auto` is native when the addon loads, else the previous default (see createVerifier). */
export type VerifierChoice = (typeof VERIFIER_CHOICES)[number];

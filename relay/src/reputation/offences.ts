/** What a peer or client can be penalised for. */
export type Offence = 'signature' | 'id' | 'shape' | 'malformed' | 'rate-limit' | 'gossip';

export const OFFENCES: readonly Offence[] = ['signature', 'id', 'shape', 'malformed', 'rate-limit', 'gossip'];

/** Points taken off a score of 100 per offence. Forgery costs most: five forged events ban a fresh peer. */
export const DEFAULT_PENALTIES: Record<Offence, number> = {
  signature: 20,
  id: 20,
  shape: 10,
  malformed: 5,
  'rate-limit': 1,
  gossip: 20,
};

/** Parses `offence=points` entries over the defaults, e.g. ['rate-limit=0', 'malformed=2']. */
export function parsePenalties(entries: readonly string[]): Record<Offence, number> {
  const penalties = { ...DEFAULT_PENALTIES };
  for (const entry of entries) {
    const match = /^\s*([a-z-]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(entry);
    if (!match || !(OFFENCES as readonly string[]).includes(match[1]!)) {
      throw new Error(`reputation penalty "${entry}" must be offence=points with offence one of ${OFFENCES.join(', ')}`);
    }
    penalties[match[1] as Offence] = Number(match[2]);
  }
  return penalties;
}

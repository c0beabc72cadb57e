import type { RelayConfig } from '../config/schema.js';

export const SUPPORTED_NIPS = [1, 9, 11, 40, 42, 70, 77];

/** The NIP-11 relay information document; every limit it advertises is enforced by the connection handler. */
export function relayInformation(config: RelayConfig, version: string, pubkey?: string, extraNips: number[] = []): Record<string, unknown> {
  const l = config.limits;
  return {
    name: config.relayName,
    description: config.relayDescription,
    ...(pubkey ? { pubkey } : {}),
    software: 'https://github.com/chaos-relay-network',
    version,
    supported_nips: [...new Set([...SUPPORTED_NIPS, ...extraNips])].sort((a, b) => a - b),
    limitation: {
      max_message_length: l.maxMessageLength,
      max_subscriptions: l.maxSubscriptions,
      max_filters: l.maxFilters,
      max_limit: l.maxLimit,
      default_limit: l.defaultLimit,
      max_subid_length: l.maxSubidLength,
      max_event_tags: l.maxEventTags,
      max_content_length: l.maxContentLength,
      created_at_lower_limit: l.createdAtLowerLimit,
      created_at_upper_limit: l.createdAtUpperLimit,
      min_pow_difficulty: 0,
      auth_required: false,
      payment_required: false,
      restricted_writes: false,
    },
  };
}

export const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': '*',
  'access-control-allow-methods': 'GET, OPTIONS',
};

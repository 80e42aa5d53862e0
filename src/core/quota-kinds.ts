// The three quota kinds and how each maps onto CARTO's config fields, service types and metrics.
import { ERROR_CODES, InvalidInputError } from './errors.js';

/** A quota kind: what a quota is counted in. */
export type QuotaKind = 'geocoding' | 'isolines' | 'routing';

/** Every quota kind, in the order reports list them. */
export const QUOTA_KINDS: readonly QuotaKind[] = Object.freeze(['geocoding', 'isolines', 'routing']);

/** The usage metrics CARTO records per service type. */
export type Metric =
  | 'success_responses'
  | 'empty_responses'
  | 'failed_responses'
  | 'total_requests'
  | 'isolines_generated';

/** Every metric, in the order reports list them. */
export const METRICS: readonly Metric[] = Object.freeze([
  'success_responses',
  'empty_responses',
  'failed_responses',
  'total_requests',
  'isolines_generated',
]);

/** How one quota kind is stored and counted. */
export interface QuotaKindSpec {
  readonly kind: QuotaKind;
  /** Name of the block in the CARTO user endpoint (SPEC 5), also the prefix of `<name>_block_price`. */
  readonly dashboardName: 'geocoding' | 'here_isolines' | 'mapzen_routing';
  /** Config field with the quota, on user and org hashes. */
  readonly quotaField: string;
  /** Config field with the soft-limit flag, on user hashes only. */
  readonly softLimitField: string;
  /** Config field with the provider, on user and org hashes. */
  readonly providerField: string;
  /** Config field with the price of a block of 1000 units, in cents. */
  readonly blockPriceField: string;
  /** Provider used when neither hash names one. */
  readonly defaultProvider: string;
  /** The metric an admitted unit is charged to, and that a successful unit stays in. */
  readonly chargedMetric: Metric;
  /** The metrics whose sum is this cycle's usage. `failed_responses` never counts. */
  readonly countedMetrics: readonly Metric[];
  /** Whether a successful request also adds 1 to `success_responses` (CARTO isolines count requests there). */
  readonly countsSuccessfulRequests: boolean;
  /** The service_type part of usage keys for a provider. */
  serviceType(provider: string): string;
}

// CARTO's config calls HERE "heremaps" while its usage keys say "here".
const PROVIDER_ALIASES: Readonly<Record<string, string>> = { heremaps: 'here' };
const keyProvider = (provider: string): string => PROVIDER_ALIASES[provider] ?? provider;

const SPECS: Readonly<Record<QuotaKind, QuotaKindSpec>> = Object.freeze({
  geocoding: Object.freeze({
    kind: 'geocoding',
    dashboardName: 'geocoding',
    quotaField: 'geocoding_quota',
    softLimitField: 'soft_geocoding_limit',
    providerField: 'geocoder_provider',
    blockPriceField: 'geocoding_block_price',
    defaultProvider: 'heremaps',
    chargedMetric: 'success_responses',
    countedMetrics: Object.freeze(['success_responses', 'empty_responses'] as Metric[]),
    countsSuccessfulRequests: false,
    serviceType: (provider: string) => `geocoder_${keyProvider(provider)}`,
  }),
  isolines: Object.freeze({
    kind: 'isolines',
    dashboardName: 'here_isolines',
    quotaField: 'here_isolines_quota',
    softLimitField: 'soft_here_isolines_limit',
    providerField: 'isolines_provider',
    blockPriceField: 'here_isolines_block_price',
    defaultProvider: 'heremaps',
    chargedMetric: 'isolines_generated',
    countedMetrics: Object.freeze(['isolines_generated', 'empty_responses'] as Metric[]),
    countsSuccessfulRequests: true,
    serviceType: (provider: string) => `${keyProvider(provider)}_isolines`,
  }),
  routing: Object.freeze({
    kind: 'routing',
    dashboardName: 'mapzen_routing',
    quotaField: 'mapzen_routing_quota',
    softLimitField: 'soft_mapzen_routing_limit',
    providerField: 'routing_provider',
    blockPriceField: 'mapzen_routing_block_price',
    defaultProvider: 'mapzen',
    chargedMetric: 'success_responses',
    countedMetrics: Object.freeze(['success_responses', 'empty_responses'] as Metric[]),
    countsSuccessfulRequests: false,
    serviceType: (provider: string) => `routing_${keyProvider(provider)}`,
  }),
});

/** Whether `value` names a quota kind. */
export function isQuotaKind(value: unknown): value is QuotaKind {
  return typeof value === 'string' && Object.hasOwn(SPECS, value);
}

/** The spec of a quota kind; throws {@link InvalidInputError} for anything else. */
export function quotaKindSpec(kind: unknown): QuotaKindSpec {
  if (!isQuotaKind(kind)) {
    throw new InvalidInputError(
      ERROR_CODES.unknownQuotaKind,
      `unknown quota kind: expected one of ${QUOTA_KINDS.join(', ')}`,
    );
  }
  return SPECS[kind];
}

/**
 * A quota kind as operators name it: the kind (`isolines`) or the block name the user view
 * shows for it (`here_isolines`, `mapzen_routing`), so what `GET` shows can be `PUT` back.
 */
export function parseQuotaKindName(value: unknown): QuotaKind {
  if (isQuotaKind(value)) return value;
  const byBlock = QUOTA_KINDS.find((kind) => SPECS[kind].dashboardName === value);
  if (byBlock !== undefined) return byBlock;
  throw new InvalidInputError(
    ERROR_CODES.unknownQuotaKind,
    `unknown quota kind: expected one of ${QUOTA_KINDS.join(', ')} (or ${QUOTA_KINDS.map((kind) => SPECS[kind].dashboardName).filter((name) => !isQuotaKind(name)).join(', ')})`,
  );
}

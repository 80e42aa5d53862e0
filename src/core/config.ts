// Parsing of the CARTO config hashes and the user/org merge rules of SPEC section 1.
import { daysInMonth, type CalendarDay } from './cycle.js';
import { ERROR_CODES, InvalidConfigError, InvalidInputError } from './errors.js';
import { isCredentialField } from './api-keys.js';
import { assertName, nameProblem } from './names.js';
import { quotaKindSpec, type QuotaKind } from './quota-kinds.js';

/** A config hash as HGETALL returns it. */
export type RawHash = Readonly<Record<string, string>>;

/**
 * Largest quota, cost or price accepted. Counters live in Redis sorted-set scores
 * (doubles), exact for integers up to 2^53; 10^15 leaves room for sums of many days.
 */
export const MAX_COUNT = 1e15;

/** Field on a user hash naming the org the user belongs to (a Tollgate addition). */
export const ORGANIZATION_FIELD = 'organization';
export { API_KEY_SHA256_FIELD, MAP_KEY_FIELD } from './api-keys.js';
/**
 * Field set on a user's decision-field hash while the user moves to another pool (cluster layout,
 * docs/cluster.md): its value is the new pool's hash tag. No decision is made on a moving hash.
 */
export const MOVING_FIELD = 'moving_to';
/** Field with the billing-cycle anchor date on user and org hashes. */
export const PERIOD_END_DATE_FIELD = 'period_end_date';

const DIGITS = /^[0-9]+$/;
const QUOTA_INPUT = /^[0-9]{1,16}$/;
// Providers become part of usage key names (`geocoder_<provider>`), so only plain words pass.
const PROVIDER = /^[A-Za-z0-9_-]{1,64}$/;
const PERIOD_END_DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) (UTC|[+-]\d{4})$/;

/**
 * A non-negative integer field: missing or `""` is 0, otherwise plain decimal digits
 * up to {@link MAX_COUNT}. `abc`, `-5`, `1e99` and `12.5` are all rejected.
 */
export function parseCount(key: string, field: string, raw: string | undefined): number {
  if (raw === undefined || raw === '') return 0;
  if (!DIGITS.test(raw)) throw new InvalidConfigError(key, field, 'expected a non-negative integer');
  const value = Number(raw);
  if (value > MAX_COUNT) throw new InvalidConfigError(key, field, `expected at most ${MAX_COUNT}`);
  return value;
}

/** A soft-limit flag: on only when it equals `true`, case-insensitively. */
export function parseFlag(raw: string | undefined): boolean {
  return raw !== undefined && raw.toLowerCase() === 'true';
}

/**
 * The day of month of a `period_end_date` such as `2016-10-10 00:00:00 UTC` or
 * `2016-10-10 00:00:00 +0000`; `null` when missing or `""` (the cycle is the calendar month).
 */
export function parsePeriodEndDay(key: string, raw: string | undefined): number | null {
  if (raw === undefined || raw === '') return null;
  const match = PERIOD_END_DATE.exec(raw);
  if (match === null) {
    throw new InvalidConfigError(key, PERIOD_END_DATE_FIELD, 'expected "YYYY-MM-DD HH:MM:SS UTC" or "... +0000"');
  }
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > lastDay || hour > 23 || minute > 59 || second > 59) {
    throw new InvalidConfigError(key, PERIOD_END_DATE_FIELD, 'not a calendar date');
  }
  return day;
}

/** A provider name: the default when missing or `""`, else a plain word safe inside a key name. */
export function parseProvider(key: string, field: string, raw: string | undefined, fallback: string): string {
  const provider = raw === undefined || raw === '' ? fallback : raw;
  if (!PROVIDER.test(provider)) throw new InvalidConfigError(key, field, 'not a valid provider name');
  return provider;
}

/** Why a provider name is refused: the one message for operators' tools. */
export const PROVIDER_RULE = 'provider must be 1-64 letters, digits, "_" or "-"';

/** An operator's provider name (admin body or CLI argument): a plain word safe inside a usage key name. */
export function parseProviderInput(value: unknown): string {
  if (typeof value !== 'string' || !PROVIDER.test(value)) throw new InvalidInputError(ERROR_CODES.invalidProvider, PROVIDER_RULE);
  return value;
}

/** An operator's quota (or block price): a non-negative integer up to {@link MAX_COUNT}, as a number or a string of digits. */
export function parseQuotaInput(value: unknown, what = 'quota'): number {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !QUOTA_INPUT.test(text) || Number(text) > MAX_COUNT) {
    throw new InvalidInputError(ERROR_CODES.invalidQuota, `${what} must be a non-negative integer up to ${MAX_COUNT}`);
  }
  return Number(text);
}

/** The one message for a date an operator gave that cannot be read. */
export const DATE_RULE =
  'date must be YYYY-MM-DD, an ISO timestamp in UTC (2016-10-10T00:00:00Z) or "YYYY-MM-DD HH:MM:SS UTC" (or +0000)';

const DATE_INPUT = /^(\d{4})-(\d{2})-(\d{2})(?:(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?Z)|(?: (\d{2}):(\d{2}):(\d{2}) (?:UTC|\+0000)))?$/;

/** A date as an operator gives it, read by {@link parseDateInput}. */
export interface DateInput {
  /** The UTC calendar day. */
  readonly day: CalendarDay;
  /** The same instant in CARTO's `period_end_date` form, `YYYY-MM-DD HH:MM:SS UTC` (a given `+0000` is kept). */
  readonly periodEndDate: string;
}

/**
 * The one parser of dates operators type, for `period_end_date` and report starts alike:
 * `2016-10-10`, `2016-10-10T00:00:00Z` (minutes or fractions allowed, UTC only), or CARTO's
 * `2016-10-10 00:00:00 UTC` / `... +0000`. Anything else, or a day that is not on the
 * calendar, is {@link DATE_RULE}.
 */
export function parseDateInput(value: unknown): DateInput {
  const match = typeof value === 'string' ? DATE_INPUT.exec(value) : null;
  if (match === null) throw new InvalidInputError(ERROR_CODES.invalidDate, DATE_RULE);
  const [year, month, day] = match.slice(1, 4).map(Number) as [number, number, number];
  const time = (match[4] !== undefined ? match.slice(4, 7) : match.slice(7, 10)).map((part) => Number(part ?? 0)) as [number, number, number];
  const [hour, minute, second] = time;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    throw new InvalidInputError(ERROR_CODES.invalidDate, DATE_RULE);
  }
  const text = value as string;
  const pad = (n: number): string => String(n).padStart(2, '0');
  const periodEndDate = match[7] !== undefined ? text : `${text.slice(0, 10)} ${pad(hour)}:${pad(minute)}:${pad(second)} UTC`;
  return { day: { year, month, day }, periodEndDate };
}

/** The org a user hash names, or `null`; a name unsafe as a key part is a config error. */
export function parseOrganization(key: string, raw: string | undefined): string | null {
  if (raw === undefined || raw === '') return null;
  if (nameProblem(raw) !== null) throw new InvalidConfigError(key, ORGANIZATION_FIELD, 'not a valid org name');
  return raw;
}

/** The raw values of the fields one decision relied on, so a script can prove they did not change. */
export interface FingerprintPart {
  readonly key: string;
  /** Field name and raw value; `null` when the field was missing. */
  readonly fields: ReadonlyArray<readonly [string, string | null]>;
}

/** Everything one quota kind's decision needs about an account, parsed and merged. */
export interface Account {
  readonly user: string;
  /** The org whose pool is spent, or `null` for a user on its own. */
  readonly org: string | null;
  readonly kind: QuotaKind;
  readonly quota: number;
  readonly softLimit: boolean;
  readonly provider: string;
  readonly serviceType: string;
  /** Day of month the billing cycle starts on, or `null` for calendar months. */
  readonly periodEndDay: number | null;
  /** Price of a block of 1000 units past the quota, in cents; `null` when not configured. */
  readonly blockPrice: number | null;
  readonly fingerprint: readonly FingerprintPart[];
}

/** Input to {@link resolveAccount}: the hashes as read, with their keys for error messages. */
export interface AccountSource {
  readonly user: string;
  readonly userKey: string;
  readonly userHash: RawHash;
  readonly org: string | null;
  readonly orgKey: string | null;
  readonly orgHash: RawHash | null;
}

/**
 * Applies SPEC section 1: for an org member the quota, provider and period come from
 * the org hash where it has the field, else from the user's; the soft flag is always
 * the user's. Throws {@link InvalidConfigError} for any garbled value involved.
 */
export function resolveAccount(source: AccountSource, kind: QuotaKind): Account {
  const spec = quotaKindSpec(kind);
  const { userKey, userHash, orgKey, orgHash } = source;
  const inOrg = source.org !== null && orgKey !== null && orgHash !== null;

  const pick = (field: string): { key: string; raw: string | undefined } => {
    if (inOrg && Object.hasOwn(orgHash, field)) return { key: orgKey, raw: orgHash[field] };
    return { key: userKey, raw: userHash[field] };
  };

  const quotaSource = pick(spec.quotaField);
  const periodSource = pick(PERIOD_END_DATE_FIELD);
  const priceSource = pick(spec.blockPriceField);
  const providerSource = pick(spec.providerField);
  const provider = parseProvider(providerSource.key, spec.providerField, providerSource.raw, spec.defaultProvider);

  // The API key fields too: a decision that authenticated a caller proves the key still stands.
  const userFields = [
    ORGANIZATION_FIELD,
    MOVING_FIELD,
    spec.quotaField,
    spec.softLimitField,
    spec.providerField,
    PERIOD_END_DATE_FIELD,
    ...Object.keys(userHash).filter(isCredentialField),
  ];
  const orgFields = [spec.quotaField, spec.providerField, PERIOD_END_DATE_FIELD];
  const part = (key: string, hash: RawHash, fields: string[]): FingerprintPart => ({
    key,
    fields: fields.map((field) => [field, hash[field] ?? null] as const),
  });

  return Object.freeze({
    user: assertName('user', source.user),
    org: inOrg ? source.org : null,
    kind,
    quota: parseCount(quotaSource.key, spec.quotaField, quotaSource.raw),
    softLimit: parseFlag(userHash[spec.softLimitField]),
    provider,
    serviceType: spec.serviceType(provider),
    periodEndDay: parsePeriodEndDay(periodSource.key, periodSource.raw),
    blockPrice: priceSource.raw === undefined || priceSource.raw === ''
      ? null
      : parseCount(priceSource.key, spec.blockPriceField, priceSource.raw),
    fingerprint: Object.freeze(
      inOrg ? [part(userKey, userHash, userFields), part(orgKey, orgHash, orgFields)] : [part(userKey, userHash, userFields)],
    ),
  });
}

/** The settings that place one owner's usage keys in time: for reading an org's or a lone user's usage. */
export interface OwnerSettings {
  readonly provider: string;
  readonly serviceType: string;
  readonly periodEndDay: number | null;
}

/** Reads provider and billing period of one quota kind from a single config hash. */
export function resolveOwnerSettings(key: string, hash: RawHash, kind: QuotaKind): OwnerSettings {
  const spec = quotaKindSpec(kind);
  const provider = parseProvider(key, spec.providerField, hash[spec.providerField], spec.defaultProvider);
  return { provider, serviceType: spec.serviceType(provider), periodEndDay: parsePeriodEndDay(key, hash[PERIOD_END_DATE_FIELD]) };
}

/**
 * Credit budgeting fields (SPEC section 6), Tollgate additions. Amounts are integers in
 * millicredits (1 credit = 1000), so sums and comparisons stay exact; the field names say so.
 */
export const CREDIT_FIELDS = Object.freeze({
  /** Org hash: the org's balance, decremented atomically by every budgeted admission. */
  balance: 'credits_balance_millicredits',
  /** Org hash: `true` (case-insensitively) turns budgeting on for the org's members. */
  enabled: 'credits_enabled',
  /** Org hash: the allocation a new member gets; missing means none (no limit). */
  defaultLimit: 'credits_default_limit_millicredits',
  /** User hash: the member's allocation; missing means no limit. */
  allocation: 'credits_allocation_millicredits',
  /** User hash: millicredits spent since the allocation was last set; a counter like the usage scores. */
  spent: 'credits_spent_millicredits',
});

/** How budgeting applies to one org member at the time of reading, parsed from its hashes. */
export interface CreditBudget {
  readonly org: string;
  readonly userKey: string;
  readonly orgKey: string;
  readonly enabled: boolean;
  /** The member's allocation in millicredits, or `null` for no limit. */
  readonly allocationMillicredits: number | null;
  /** The config fields the budget relied on, for the decide script to re-check. */
  readonly fingerprint: readonly FingerprintPart[];
}

/**
 * The credit budget of a user, or `null` for a user outside any org (budgets belong to orgs).
 * Only config fields are parsed here; the balance and spent counters move with every request
 * and are read inside the decide script, where the check and the charge are one step.
 */
export function resolveCreditBudget(source: AccountSource): CreditBudget | null {
  const { org, orgKey, orgHash, userKey, userHash } = source;
  if (org === null || orgKey === null || orgHash === null) return null;
  const rawAllocation = userHash[CREDIT_FIELDS.allocation];
  return Object.freeze({
    org,
    userKey,
    orgKey,
    enabled: parseFlag(orgHash[CREDIT_FIELDS.enabled]),
    allocationMillicredits:
      rawAllocation === undefined || rawAllocation === '' ? null : parseCount(userKey, CREDIT_FIELDS.allocation, rawAllocation),
    fingerprint: Object.freeze([
      { key: userKey, fields: [[CREDIT_FIELDS.allocation, rawAllocation ?? null] as const] },
      { key: orgKey, fields: [[CREDIT_FIELDS.enabled, orgHash[CREDIT_FIELDS.enabled] ?? null] as const] },
    ]),
  });
}

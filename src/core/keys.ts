// The one place Redis key names are built. Callers pass names already checked by names.ts.
import { METRICS, type Metric } from './quota-kinds.js';

/** Whose usage a key holds: a user's own, or an org's pooled usage. */
export type OwnerType = 'user' | 'org';

/** A user or org whose usage is recorded. */
export interface Owner {
  readonly type: OwnerType;
  readonly name: string;
}

/** `rails:users:<user>`: the user's config hash (CARTO layout). */
export function userConfigKey(user: string): string {
  return `rails:users:${user}`;
}

/** `rails:orgs:<org>`: the org's config hash (CARTO layout). */
export function orgConfigKey(org: string): string {
  return `rails:orgs:${org}`;
}

/** The config hash of an owner. */
export function configKey(owner: Owner): string {
  return owner.type === 'user' ? userConfigKey(owner.name) : orgConfigKey(owner.name);
}

/** `user|org:<name>:<service_type>:<metric>:<YYYYMM>`: a usage sorted set (member = day, score = count). */
export function usageKey(owner: Owner, serviceType: string, metric: Metric, yyyymm: string): string {
  return `${owner.type}:${owner.name}:${serviceType}:${metric}:${yyyymm}`;
}

/** A usage key taken apart: whose, which service type and metric, which month. */
export interface ParsedUsageKey {
  readonly owner: Owner;
  readonly serviceType: string;
  readonly metric: Metric;
  /** `YYYYMM`. */
  readonly yyyymm: string;
  readonly year: number;
  /** 1-12. */
  readonly month: number;
}

// Names never hold ':' (names.ts), so the five parts split unambiguously.
const USAGE_KEY = /^(user|org):([^:]+):([^:]+):([a-z_]+):(\d{4})(\d{2})$/;

/**
 * The parts of a usage key built by {@link usageKey}, or `null` for any other key (another
 * metric, a malformed month): the one parser of usage key names, for reports, scans and deletes.
 */
export function parseUsageKey(key: string): ParsedUsageKey | null {
  const match = USAGE_KEY.exec(key);
  if (match === null) return null;
  const [, type, name, serviceType, metric, year, month] = match as unknown as [string, OwnerType, string, string, string, string, string];
  if (!(METRICS as readonly string[]).includes(metric)) return null;
  const monthNumber = Number(month);
  if (monthNumber < 1 || monthNumber > 12) return null;
  return {
    owner: { type, name },
    serviceType,
    metric: metric as Metric,
    yyyymm: `${year}${month}`,
    year: Number(year),
    month: monthNumber,
  };
}

/** The SCAN pattern matching every usage key of an owner type (`*`) or one owner. */
export function usageKeyPattern(type: OwnerType, name = '*'): string {
  return `${type}:${name}:*`;
}

/**
 * A reservation id: `<bucket>.<field>`, where the bucket is `<slot>.<tag>.<n>` (minute slot,
 * the admitting client's random tag, a counter), all base 36. Chosen by the client before the
 * script runs, so a re-sent admission finds its own field.
 */
export const RESERVATION_ID = /^([0-9a-z]{1,12}\.[0-9a-z]{1,16}\.[0-9a-z]{1,12})\.([0-9a-z]{1,12})$/;

/**
 * `tollgate:rsv:<slot>.<tag>.<n>`: a hash of up to about a hundred reservations of one client in
 * one minute, field = the reservation's last id part, value = pending (`p<cost>:<check>`) or
 * settled (`s`). Small enough to stay a listpack; expires after the settle window.
 */
export function reservationBucketKey(bucket: string): string {
  return `tollgate:rsv:${bucket}`;
}

/** The bucket and field of a reservation id (already checked against {@link RESERVATION_ID}). */
export function reservationParts(id: string): { readonly bucket: string; readonly field: string } {
  const match = RESERVATION_ID.exec(id);
  if (match === null) throw new RangeError('not a reservation id');
  return { bucket: match[1] as string, field: match[2] as string };
}

/** The bucket key (CARTO layout) and field of a reservation id (already checked against {@link RESERVATION_ID}). */
export function reservationSlot(id: string): { readonly key: string; readonly field: string } {
  const { bucket, field } = reservationParts(id);
  return { key: reservationBucketKey(bucket), field };
}

/**
 * `tollgate:journal:<entryId>`: marks a fail-open journal entry as written, so a write-back
 * repeated after a lost reply changes nothing.
 */
export function journalMarkerKey(entryId: string): string {
  return `tollgate:journal:${entryId}`;
}

/** `tollgate:request:<user>:<requestId>`: remembers an admitted request id for idempotent retries. */
export function requestIdKey(user: string, requestId: string): string {
  return `tollgate:request:${user}:${requestId}`;
}

/**
 * `tollgate:credits:user|org:<name>:<service_type>:<YYYYMM>`: credits spent, in millicredits,
 * as a sorted set shaped like the usage keys (member = day "01".."31", score = millicredits).
 */
export function creditLedgerKey(owner: Owner, serviceType: string, yyyymm: string): string {
  return `tollgate:credits:${owner.type}:${owner.name}:${serviceType}:${yyyymm}`;
}

/** `tollgate:adjustments:<user>`: the audit list of an operator's usage adjustments for a user (newest first). */
export function adjustmentLogKey(user: string): string {
  return `tollgate:adjustments:${user}`;
}

/** Escapes `\` so a checked name (which never holds `*?[]`) matches itself literally in a SCAN pattern. */
export function globLiteral(name: string): string {
  return name.replace(/\\/g, '\\\\');
}

// Key layouts: CARTO's (one Redis, the default) and the cluster layout (every key of one decision in its pool's hash slot).
import { METRICS, type Metric } from './quota-kinds.js';
import {
  adjustmentLogKey,
  creditLedgerKey,
  journalMarkerKey,
  orgConfigKey,
  parseUsageKey,
  requestIdKey,
  reservationBucketKey,
  usageKey,
  usageKeyPattern,
  userConfigKey,
  globLiteral,
  type Owner,
  type OwnerType,
  type ParsedUsageKey,
} from './keys.js';

/** `carto`: CARTO's key names, for one Redis or a Sentinel group. `cluster`: hash-tagged names for a Redis Cluster. */
export type KeyLayoutName = 'carto' | 'cluster';

/** The names of the two layouts, for option parsing and the CLI. */
export const KEY_LAYOUT_NAMES: readonly KeyLayoutName[] = Object.freeze(['carto', 'cluster']);

/** A usage key taken apart, with the org whose slot holds a member's own counters (cluster layout). */
export interface ParsedLayoutUsageKey extends ParsedUsageKey {
  /**
   * For a user's own counters in the cluster layout: the org it was a member of when they were
   * written (they live in that org's slot), or `null` for a user in no org. Always `null` in the
   * CARTO layout, where a user's counters are one key whatever its org; for org keys, the org.
   */
  readonly home: string | null;
}

/**
 * Where every key lives. Callers pass names already checked by names.ts; `org` is the org the
 * user is a member of (`null`: none), which in the cluster layout decides the hash slot.
 */
export interface KeyLayout {
  readonly name: KeyLayoutName;
  /**
   * The hash read first for a user, built from its name alone. CARTO: its config hash. Cluster:
   * its directory entry, which names its org (and holds its decision fields when it has none).
   */
  directoryKey(user: string): string;
  /** The hash holding the decision fields of `user` (quotas, soft flags, API keys, credits) while in `org`. */
  userConfigKey(user: string, org: string | null): string;
  orgConfigKey(org: string): string;
  /** A usage sorted set: an org's pool, or a user's own counters while in `org`. */
  usageKey(owner: Owner, org: string | null, serviceType: string, metric: Metric, yyyymm: string): string;
  /** One usage key name back into its parts, or `null` for any other key. */
  parseUsageKey(key: string): ParsedLayoutUsageKey | null;
  /** SCAN patterns matching every usage key of one owner (or of every owner of a type, with `*`). */
  usageKeyPatterns(type: OwnerType, name?: string): string[];
  /** The reservation bucket `bucket` of the pool of `user` in `org`. */
  reservationBucketKey(user: string, org: string | null, bucket: string): string;
  requestIdKey(user: string, org: string | null, requestId: string): string;
  /** A credit ledger of an org member (`owner` the user) or of the org. */
  creditLedgerKey(owner: Owner, org: string, serviceType: string, yyyymm: string): string;
  journalMarkerKey(user: string, org: string | null, entryId: string): string;
  adjustmentLogKey(user: string, org: string | null): string;
  /**
   * Whether each pool gets its own reservation buckets. Cluster: yes (a bucket must sit in its
   * pool's slot). CARTO: no, one client's admissions for all users share its buckets (fewer keys).
   */
  readonly bucketsPerPool: boolean;
  /** The hash-tag of the pool of `user` in `org` (`{org:<o>}`, `{user:<u>}`), or `''` in the CARTO layout. */
  poolTag(user: string, org: string | null): string;
}

/** CARTO's layout: `rails:users:<u>`, `rails:orgs:<o>`, `user:<u>:...`, `org:<o>:...` (docs/key-layout.md). */
export const CARTO_LAYOUT: KeyLayout = Object.freeze({
  name: 'carto',
  bucketsPerPool: false,
  directoryKey: userConfigKey,
  userConfigKey: (user: string) => userConfigKey(user),
  orgConfigKey,
  usageKey: (owner: Owner, _org: string | null, serviceType: string, metric: Metric, yyyymm: string) => usageKey(owner, serviceType, metric, yyyymm),
  parseUsageKey(key: string): ParsedLayoutUsageKey | null {
    const parsed = parseUsageKey(key);
    return parsed === null ? null : { ...parsed, home: parsed.owner.type === 'org' ? parsed.owner.name : null };
  },
  usageKeyPatterns: (type: OwnerType, name?: string) => [usageKeyPattern(type, name === undefined ? '*' : globLiteral(name))],
  reservationBucketKey: (_user: string, _org: string | null, bucket: string) => reservationBucketKey(bucket),
  requestIdKey: (user: string, _org: string | null, requestId: string) => requestIdKey(user, requestId),
  creditLedgerKey: (owner: Owner, _org: string, serviceType: string, yyyymm: string) => creditLedgerKey(owner, serviceType, yyyymm),
  journalMarkerKey: (_user: string, _org: string | null, entryId: string) => journalMarkerKey(entryId),
  adjustmentLogKey: (user: string) => adjustmentLogKey(user),
  poolTag: () => '',
});

const userTag = (user: string): string => `{user:${user}}`;
const orgTag = (org: string): string => `{org:${org}}`;
const tagOf = (user: string, org: string | null): string => (org === null ? userTag(user) : orgTag(org));

// Names never hold ':', '{' or '}' (names.ts), so every part splits unambiguously.
const LONE_USAGE = /^user:\{user:([^:{}]+)\}:([^:]+):([a-z_]+):(\d{4})(\d{2})$/;
const MEMBER_USAGE = /^user:\{org:([^:{}]+)\}:([^:{}]+):([^:]+):([a-z_]+):(\d{4})(\d{2})$/;
const ORG_USAGE = /^org:\{org:([^:{}]+)\}:([^:]+):([a-z_]+):(\d{4})(\d{2})$/;

function parsedUsage(
  owner: Owner,
  home: string | null,
  serviceType: string,
  metric: string,
  year: string,
  month: string,
): ParsedLayoutUsageKey | null {
  if (!(METRICS as readonly string[]).includes(metric)) return null;
  const monthNumber = Number(month);
  if (monthNumber < 1 || monthNumber > 12) return null;
  return { owner, home, serviceType, metric: metric as Metric, yyyymm: `${year}${month}`, year: Number(year), month: monthNumber };
}

/**
 * The cluster layout (docs/cluster.md): every key one decision reads or writes carries its pool's
 * hash tag, `{org:<o>}` for an org and all its members, `{user:<u>}` for a user in no org.
 *
 * - `rails:users:{user:<u>}`: the directory entry: `organization` for a member; for a user in
 *   no org, every config field as in CARTO's `rails:users:<u>`.
 * - `rails:orgs:{org:<o>}`: the org's config; `rails:orgs:{org:<o>}:member:<u>`: a member's
 *   config fields (what CARTO keeps in `rails:users:<u>`), `organization` included.
 * - `org:{org:<o>}:<service>:<metric>:<YYYYMM>`: the pool's usage;
 *   `user:{org:<o>}:<u>:<service>:<metric>:<YYYYMM>`: a member's own usage while in `<o>`;
 *   `user:{user:<u>}:<service>:<metric>:<YYYYMM>`: a user's own usage while in no org.
 * - `tollgate:rsv:{<pool>}:<bucket>`, `tollgate:request:{<pool>}:<u>:<rid>`,
 *   `tollgate:credits:{org:<o>}:user:<u>|org:...`, `tollgate:journal:{<pool>}:<id>`,
 *   `tollgate:adjustments:{<pool>}:<u>`.
 */
export const CLUSTER_LAYOUT: KeyLayout = Object.freeze({
  name: 'cluster',
  bucketsPerPool: true,
  directoryKey: (user: string) => `rails:users:${userTag(user)}`,
  userConfigKey: (user: string, org: string | null) =>
    org === null ? `rails:users:${userTag(user)}` : `rails:orgs:${orgTag(org)}:member:${user}`,
  orgConfigKey: (org: string) => `rails:orgs:${orgTag(org)}`,
  usageKey(owner: Owner, org: string | null, serviceType: string, metric: Metric, yyyymm: string): string {
    if (owner.type === 'org') return `org:${orgTag(owner.name)}:${serviceType}:${metric}:${yyyymm}`;
    if (org === null) return `user:${userTag(owner.name)}:${serviceType}:${metric}:${yyyymm}`;
    return `user:${orgTag(org)}:${owner.name}:${serviceType}:${metric}:${yyyymm}`;
  },
  parseUsageKey(key: string): ParsedLayoutUsageKey | null {
    let match = LONE_USAGE.exec(key);
    if (match !== null) {
      const [, user, serviceType, metric, year, month] = match as unknown as string[];
      return parsedUsage({ type: 'user', name: user as string }, null, serviceType as string, metric as string, year as string, month as string);
    }
    match = MEMBER_USAGE.exec(key);
    if (match !== null) {
      const [, org, user, serviceType, metric, year, month] = match as unknown as string[];
      return parsedUsage({ type: 'user', name: user as string }, org as string, serviceType as string, metric as string, year as string, month as string);
    }
    match = ORG_USAGE.exec(key);
    if (match !== null) {
      const [, org, serviceType, metric, year, month] = match as unknown as string[];
      return parsedUsage({ type: 'org', name: org as string }, org as string, serviceType as string, metric as string, year as string, month as string);
    }
    return null;
  },
  usageKeyPatterns(type: OwnerType, name?: string): string[] {
    const literal = name === undefined ? '*' : globLiteral(name);
    if (type === 'org') return [`org:{org:${literal}}:*`];
    return [`user:{user:${literal}}:*`, `user:{org:*}:${literal}:*`];
  },
  reservationBucketKey: (user: string, org: string | null, bucket: string) => `tollgate:rsv:${tagOf(user, org)}:${bucket}`,
  requestIdKey: (user: string, org: string | null, requestId: string) => `tollgate:request:${tagOf(user, org)}:${user}:${requestId}`,
  creditLedgerKey(owner: Owner, org: string, serviceType: string, yyyymm: string): string {
    const who = owner.type === 'org' ? 'org' : `user:${owner.name}`;
    return `tollgate:credits:${orgTag(org)}:${who}:${serviceType}:${yyyymm}`;
  },
  journalMarkerKey: (user: string, org: string | null, entryId: string) => `tollgate:journal:${tagOf(user, org)}:${entryId}`,
  adjustmentLogKey: (user: string, org: string | null) => `tollgate:adjustments:${tagOf(user, org)}:${user}`,
  poolTag: tagOf,
});

/** The layout of a name. */
export function keyLayout(name: KeyLayoutName): KeyLayout {
  return name === 'cluster' ? CLUSTER_LAYOUT : CARTO_LAYOUT;
}

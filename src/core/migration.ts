// `tollgate migrate`, pure part: which source keys are Tollgate's, what each becomes in the other key layout, and when two values are equal.
import { MOVING_FIELD, parseOrganization, ORGANIZATION_FIELD } from './config.js';
import { ConflictError, ERROR_CODES } from './errors.js';
import type { Owner } from './keys.js';
import { CARTO_LAYOUT, CLUSTER_LAYOUT, type KeyLayout, type KeyLayoutName } from './layout.js';
import { nameProblem } from './names.js';
import type { Metric } from './quota-kinds.js';

/** The Redis types Tollgate's copied keys have. */
export type CopiedType = 'hash' | 'zset' | 'list' | 'string';

/** A key's content as read from Redis (every value a string, as Redis returns it). */
export type KeyValue =
  | { readonly type: 'hash'; readonly fields: Readonly<Record<string, string>> }
  /** Member, score, member, score...: ZRANGE WITHSCORES as Redis answers it (scores as Redis prints them). */
  | { readonly type: 'zset'; readonly flat: readonly string[] }
  | { readonly type: 'list'; readonly items: readonly string[] }
  /** `expiresAtMs`: local epoch ms at which the key expires (read as PTTL), `null` for none. */
  | { readonly type: 'string'; readonly value: string; readonly expiresAtMs: number | null };

/** Kinds of key, as the migration counts them. */
export const MIGRATED_KINDS = Object.freeze(['users', 'orgs', 'usage', 'requests', 'credits', 'adjustments'] as const);
/** One kind of copied key: config hashes of users (directory entries and member hashes) and orgs, usage counters, request ids, credit ledgers, adjustment logs. */
export type MigratedKind = (typeof MIGRATED_KINDS)[number];

/** A source key the migration copies, taken apart (names checked by names.ts). */
export type ParsedSource =
  /** CARTO `rails:users:<u>`, or the cluster directory entry `rails:users:{user:<u>}`. */
  | { readonly what: 'user'; readonly user: string }
  /** Cluster `rails:orgs:{org:<o>}:member:<u>`. */
  | { readonly what: 'member'; readonly org: string; readonly user: string }
  | { readonly what: 'org'; readonly org: string }
  /** `home`: the cluster pool org of a member's own counters (`null`: a lone user's, or CARTO). */
  | { readonly what: 'usage'; readonly owner: Owner; readonly home: string | null; readonly serviceType: string; readonly metric: Metric; readonly yyyymm: string }
  | { readonly what: 'request'; readonly user: string; readonly requestId: string }
  /** `org`: the org whose slot holds the ledger (cluster layout), `null` in CARTO's. */
  | { readonly what: 'ledger'; readonly owner: Owner; readonly org: string | null; readonly serviceType: string; readonly yyyymm: string }
  | { readonly what: 'adjustments'; readonly user: string };

/** What a source key is, told by its name alone. */
export type SourceClass =
  | { readonly role: 'copy'; readonly kind: MigratedKind; readonly type: CopiedType; readonly parsed: ParsedSource }
  /** Reservation buckets and fail-open journal markers: short-lived, never copied (docs/cluster.md). */
  | { readonly role: 'left-out'; readonly what: 'reservations' | 'journal' }
  /** Under one of Tollgate's prefixes, but not a name Tollgate builds: reported, never guessed. */
  | { readonly role: 'unparsed'; readonly reason: string }
  /** Not under a Tollgate prefix: another application's key, left alone. */
  | { readonly role: 'other' };

/** A key to write in the target: its name (built by layout.ts), kind and content. */
export interface PlannedKey {
  readonly key: string;
  readonly kind: MigratedKind;
  readonly value: KeyValue;
}

/** A source key that is not copied, and why. */
export interface UnmappedKey {
  readonly key: string;
  readonly reason: string;
}

/** A source key read, with its class. */
export interface SourceRecord {
  readonly key: string;
  readonly parsed: ParsedSource;
  readonly value: KeyValue;
}

/** What the source layout is when migrating `to` a layout: the other one. */
export function sourceLayoutOf(to: KeyLayoutName): KeyLayout {
  return to === 'cluster' ? CARTO_LAYOUT : CLUSTER_LAYOUT;
}

const named = (...names: string[]): boolean => names.every((name) => nameProblem(name) === null);
const unparsed = (reason: string): SourceClass => ({ role: 'unparsed', reason });
const copy = (kind: MigratedKind, type: CopiedType, parsed: ParsedSource): SourceClass => ({ role: 'copy', kind, type, parsed });
const owner = (type: string, name: string): Owner => ({ type: type === 'org' ? 'org' : 'user', name });

// Candidate parses; each is confirmed by building the name again with layout.ts, so a key is
// copied only when it is exactly a name that layout builds.
const CARTO_USER = /^rails:users:(.+)$/;
const CARTO_ORG = /^rails:orgs:(.+)$/;
const CARTO_REQUEST = /^tollgate:request:([^:]+):([^:]+)$/;
const CARTO_LEDGER = /^tollgate:credits:(user|org):([^:]+):([^:]+):(\d{6})$/;
const CARTO_ADJUSTMENTS = /^tollgate:adjustments:([^:]+)$/;
const CLUSTER_DIRECTORY = /^rails:users:\{user:([^{}:]+)\}$/;
const CLUSTER_ORG = /^rails:orgs:\{org:([^{}:]+)\}$/;
const CLUSTER_MEMBER = /^rails:orgs:\{org:([^{}:]+)\}:member:([^:]+)$/;
const CLUSTER_REQUEST = /^tollgate:request:\{(user|org):([^{}:]+)\}:([^:]+):([^:]+)$/;
const CLUSTER_LEDGER = /^tollgate:credits:\{org:([^{}:]+)\}:(?:user:([^:]+)|org):([^:]+):(\d{6})$/;
const CLUSTER_ADJUSTMENTS = /^tollgate:adjustments:\{(user|org):([^{}:]+)\}:([^:]+)$/;
const TOLLGATE_PREFIXES = ['rails:users:', 'rails:orgs:', 'user:', 'org:', 'tollgate:'];

const validMonth = (yyyymm: string): boolean => Number(yyyymm.slice(4)) >= 1 && Number(yyyymm.slice(4)) <= 12;

/**
 * What `key` is in the source layout of a migration `to` the other layout: a key to copy (with
 * its expected Redis type), one left out on purpose, a Tollgate-looking key that is not a name
 * the layout builds, or another application's key.
 */
export function classifySourceKey(to: KeyLayoutName, key: string): SourceClass {
  if (key.startsWith('tollgate:rsv:')) return { role: 'left-out', what: 'reservations' };
  if (key.startsWith('tollgate:journal:')) return { role: 'left-out', what: 'journal' };
  if (!TOLLGATE_PREFIXES.some((prefix) => key.startsWith(prefix))) return { role: 'other' };
  const found = to === 'cluster' ? classifyCarto(key) : classifyCluster(key);
  return found ?? unparsed(`not a ${sourceLayoutOf(to).name}-layout key name`);
}

function classifyCarto(key: string): SourceClass | null {
  const layout = CARTO_LAYOUT;
  let match = CARTO_USER.exec(key);
  if (match !== null) {
    const user = match[1] as string;
    return named(user) && layout.directoryKey(user) === key ? copy('users', 'hash', { what: 'user', user }) : null;
  }
  match = CARTO_ORG.exec(key);
  if (match !== null) {
    const org = match[1] as string;
    return named(org) && layout.orgConfigKey(org) === key ? copy('orgs', 'hash', { what: 'org', org }) : null;
  }
  if (key.startsWith('user:') || key.startsWith('org:')) return usageClass(layout, key);
  match = CARTO_REQUEST.exec(key);
  if (match !== null) {
    const [, user, requestId] = match as unknown as [string, string, string];
    return named(user, requestId) && layout.requestIdKey(user, null, requestId) === key
      ? copy('requests', 'string', { what: 'request', user, requestId })
      : null;
  }
  match = CARTO_LEDGER.exec(key);
  if (match !== null) {
    const [, type, name, serviceType, yyyymm] = match as unknown as [string, string, string, string, string];
    const who = owner(type, name);
    return named(name, serviceType) && validMonth(yyyymm) && layout.creditLedgerKey(who, '', serviceType, yyyymm) === key
      ? copy('credits', 'zset', { what: 'ledger', owner: who, org: null, serviceType, yyyymm })
      : null;
  }
  match = CARTO_ADJUSTMENTS.exec(key);
  if (match !== null) {
    const user = match[1] as string;
    return named(user) && layout.adjustmentLogKey(user, null) === key ? copy('adjustments', 'list', { what: 'adjustments', user }) : null;
  }
  return null;
}

function classifyCluster(key: string): SourceClass | null {
  const layout = CLUSTER_LAYOUT;
  let match = CLUSTER_DIRECTORY.exec(key);
  if (match !== null) {
    const user = match[1] as string;
    return named(user) && layout.directoryKey(user) === key ? copy('users', 'hash', { what: 'user', user }) : null;
  }
  match = CLUSTER_ORG.exec(key);
  if (match !== null) {
    const org = match[1] as string;
    return named(org) && layout.orgConfigKey(org) === key ? copy('orgs', 'hash', { what: 'org', org }) : null;
  }
  match = CLUSTER_MEMBER.exec(key);
  if (match !== null) {
    const [, org, user] = match as unknown as [string, string, string];
    return named(org, user) && layout.userConfigKey(user, org) === key ? copy('users', 'hash', { what: 'member', org, user }) : null;
  }
  if (key.startsWith('user:') || key.startsWith('org:')) return usageClass(layout, key);
  match = CLUSTER_REQUEST.exec(key);
  if (match !== null) {
    const [, type, tagName, user, requestId] = match as unknown as [string, string, string, string, string];
    const org = type === 'org' ? tagName : null;
    return named(tagName, user, requestId) && layout.requestIdKey(user, org, requestId) === key
      ? copy('requests', 'string', { what: 'request', user, requestId })
      : null;
  }
  match = CLUSTER_LEDGER.exec(key);
  if (match !== null) {
    const [, org, user, serviceType, yyyymm] = match as unknown as [string, string, string | undefined, string, string];
    const who: Owner = user === undefined ? { type: 'org', name: org } : { type: 'user', name: user };
    return named(org, who.name, serviceType) && validMonth(yyyymm) && layout.creditLedgerKey(who, org, serviceType, yyyymm) === key
      ? copy('credits', 'zset', { what: 'ledger', owner: who, org, serviceType, yyyymm })
      : null;
  }
  match = CLUSTER_ADJUSTMENTS.exec(key);
  if (match !== null) {
    const [, type, tagName, user] = match as unknown as [string, string, string, string];
    const org = type === 'org' ? tagName : null;
    return named(tagName, user) && layout.adjustmentLogKey(user, org) === key ? copy('adjustments', 'list', { what: 'adjustments', user }) : null;
  }
  return null;
}

function usageClass(layout: KeyLayout, key: string): SourceClass | null {
  const parsed = layout.parseUsageKey(key);
  if (parsed === null || !named(parsed.owner.name, parsed.serviceType)) return null;
  const home = parsed.owner.type === 'user' ? parsed.home : null;
  if (home !== null && !named(home)) return null;
  if (layout.usageKey(parsed.owner, home, parsed.serviceType, parsed.metric, parsed.yyyymm) !== key) return null;
  const { owner: who, serviceType, metric, yyyymm } = parsed;
  return copy('usage', 'zset', { what: 'usage', owner: who, home, serviceType, metric, yyyymm });
}

/** The keys to write and the source keys that cannot be copied. */
export interface MigrationPlan {
  readonly keys: readonly PlannedKey[];
  readonly unmapped: readonly UnmappedKey[];
}

/** Where a user's decision fields live: `null` a user in no org, a name its org; `undefined` an unusable `organization`. */
type Home = string | null | undefined;

function homeOf(fields: Readonly<Record<string, string>>): Home {
  try {
    return parseOrganization('', fields[ORGANIZATION_FIELD]);
  } catch {
    return undefined;
  }
}

const BAD_ORGANIZATION = 'its user hash names an organization that is not a valid org name';

/**
 * Maps every record read from a CARTO-layout source to its cluster-layout key (`to` =
 * `cluster`), or every record of a cluster-layout source back to CARTO's (`to` = `carto`).
 * Pure: the caller reads, compares and writes.
 */
export function planMigration(to: KeyLayoutName, records: Iterable<SourceRecord>): MigrationPlan {
  return to === 'cluster' ? planToCluster(records) : planToCarto(records);
}

function planToCluster(records: Iterable<SourceRecord>): MigrationPlan {
  const list = [...records];
  const homes = new Map<string, Home>();
  for (const record of list) {
    if (record.parsed.what === 'user' && record.value.type === 'hash') homes.set(record.parsed.user, homeOf(record.value.fields));
  }
  // A user with counters but no config hash is in no org (CARTO reads no `organization` for it).
  const home = (user: string): Home => (homes.has(user) ? homes.get(user) : null);
  const layout = CLUSTER_LAYOUT;
  const keys: PlannedKey[] = [];
  const unmapped: UnmappedKey[] = [];
  for (const { key, parsed, value } of list) {
    const plan = (target: string, kind: MigratedKind): void => void keys.push({ key: target, kind, value });
    switch (parsed.what) {
      case 'user': {
        const org = home(parsed.user);
        if (org === undefined) unmapped.push({ key, reason: BAD_ORGANIZATION });
        else if (org === null) plan(layout.directoryKey(parsed.user), 'users');
        else {
          plan(layout.userConfigKey(parsed.user, org), 'users');
          keys.push({ key: layout.directoryKey(parsed.user), kind: 'users', value: { type: 'hash', fields: { [ORGANIZATION_FIELD]: org } } });
        }
        break;
      }
      case 'org':
        plan(layout.orgConfigKey(parsed.org), 'orgs');
        break;
      case 'usage': {
        const org = parsed.owner.type === 'org' ? parsed.owner.name : home(parsed.owner.name);
        if (org === undefined) unmapped.push({ key, reason: BAD_ORGANIZATION });
        else plan(layout.usageKey(parsed.owner, org, parsed.serviceType, parsed.metric, parsed.yyyymm), 'usage');
        break;
      }
      case 'request': {
        const org = home(parsed.user);
        if (org === undefined) unmapped.push({ key, reason: BAD_ORGANIZATION });
        else plan(layout.requestIdKey(parsed.user, org, parsed.requestId), 'requests');
        break;
      }
      case 'ledger': {
        const org = parsed.owner.type === 'org' ? parsed.owner.name : home(parsed.owner.name);
        if (org === undefined) unmapped.push({ key, reason: BAD_ORGANIZATION });
        else if (org === null) {
          unmapped.push({ key, reason: 'credit ledger of a user in no org: the cluster layout keeps ledgers in an org\'s slot, and CARTO does not record which org it was' });
        } else plan(layout.creditLedgerKey(parsed.owner, org, parsed.serviceType, parsed.yyyymm), 'credits');
        break;
      }
      case 'adjustments': {
        const org = home(parsed.user);
        if (org === undefined) unmapped.push({ key, reason: BAD_ORGANIZATION });
        else plan(layout.adjustmentLogKey(parsed.user, org), 'adjustments');
        break;
      }
      case 'member':
        unmapped.push({ key, reason: 'a cluster member hash in a CARTO-layout source' });
        break;
    }
  }
  return { keys, unmapped };
}

/** Several sources of one target key, in the order read. */
class Gathered {
  readonly #byKey = new Map<string, { kind: MigratedKind; sources: Array<{ key: string; value: KeyValue }> }>();

  add(target: string, kind: MigratedKind, key: string, value: KeyValue): void {
    const found = this.#byKey.get(target);
    if (found === undefined) this.#byKey.set(target, { kind, sources: [{ key, value }] });
    else found.sources.push({ key, value });
  }

  entries(): IterableIterator<[string, { kind: MigratedKind; sources: Array<{ key: string; value: KeyValue }> }]> {
    return this.#byKey.entries();
  }
}

function planToCarto(records: Iterable<SourceRecord>): MigrationPlan {
  const layout = CARTO_LAYOUT;
  const directories = new Map<string, { key: string; fields: Readonly<Record<string, string>> }>();
  const members = new Map<string, { key: string; fields: Readonly<Record<string, string>> }>();
  const memberId = (org: string, user: string): string => `${org}\n${user}`;
  const gathered = new Gathered();
  const keys: PlannedKey[] = [];
  const unmapped: UnmappedKey[] = [];
  for (const { key, parsed, value } of records) {
    switch (parsed.what) {
      case 'user':
        if (value.type === 'hash') directories.set(parsed.user, { key, fields: value.fields });
        break;
      case 'member':
        if (value.type === 'hash') members.set(memberId(parsed.org, parsed.user), { key, fields: value.fields });
        break;
      case 'org':
        keys.push({ key: layout.orgConfigKey(parsed.org), kind: 'orgs', value });
        break;
      case 'usage':
        // A user's own counters from every home it had (lone, each org) sum into one CARTO key.
        gathered.add(layout.usageKey(parsed.owner, null, parsed.serviceType, parsed.metric, parsed.yyyymm), 'usage', key, value);
        break;
      case 'request':
        gathered.add(layout.requestIdKey(parsed.user, null, parsed.requestId), 'requests', key, value);
        break;
      case 'ledger':
        gathered.add(layout.creditLedgerKey(parsed.owner, parsed.org ?? '', parsed.serviceType, parsed.yyyymm), 'credits', key, value);
        break;
      case 'adjustments':
        gathered.add(layout.adjustmentLogKey(parsed.user, null), 'adjustments', key, value);
        break;
    }
  }
  for (const [user, directory] of directories) {
    const org = homeOf(directory.fields);
    if (org === undefined) {
      unmapped.push({ key: directory.key, reason: 'its directory entry names an organization that is not a valid org name' });
      continue;
    }
    let fields = directory.fields;
    const member = org === null ? undefined : members.get(memberId(org, user));
    if (directory.fields[MOVING_FIELD] !== undefined || member?.fields[MOVING_FIELD] !== undefined) {
      // Half-way through a move between pools: which hash holds the truth is the move's to finish.
      unmapped.push({ key: directory.key, reason: `the user is moving (${MOVING_FIELD} set): finish the move with tollgate user set-org / leave-org, then run again` });
      if (org !== null) members.delete(memberId(org, user));
      continue;
    }
    if (org !== null && member !== undefined) {
      members.delete(memberId(org, user));
      // The member hash holds the decision fields; the directory's `organization` says which org is current.
      fields = { ...directory.fields, ...member.fields, [ORGANIZATION_FIELD]: org };
    }
    keys.push({ key: layout.userConfigKey(user, null), kind: 'users', value: { type: 'hash', fields } });
  }
  for (const member of members.values()) {
    unmapped.push({ key: member.key, reason: 'member hash of an org its user\'s directory entry does not name (or no directory entry)' });
  }
  for (const [target, { kind, sources }] of gathered.entries()) {
    const merged = mergeSources(sources, unmapped);
    if (merged !== null) keys.push({ key: target, kind, value: merged });
  }
  return { keys, unmapped };
}

/**
 * One value from the values of several homes: sorted sets sum per member (a user's counters
 * and ledgers from each org it was in), lists merge newest first by their entries' `at`, and of
 * one request id the copy living longest is kept (the others are reported).
 */
function mergeSources(sources: ReadonlyArray<{ key: string; value: KeyValue }>, unmapped: UnmappedKey[]): KeyValue | null {
  const first = sources[0];
  if (first === undefined) return null;
  if (sources.length === 1) return first.value;
  switch (first.value.type) {
    case 'zset': {
      const sums = new Map<string, number>();
      for (const { value } of sources) {
        if (value.type !== 'zset') continue;
        for (let i = 0; i + 1 < value.flat.length; i += 2) {
          const member = value.flat[i] as string;
          sums.set(member, (sums.get(member) ?? 0) + Number(value.flat[i + 1]));
        }
      }
      return { type: 'zset', flat: [...sums].flatMap(([member, sum]) => [member, String(sum)]) };
    }
    case 'list': {
      const items = sources.flatMap(({ value }) => (value.type === 'list' ? value.items.map((item) => ({ item, at: entryTime(item) })) : []));
      // A stable sort keeps each log's own order among entries of equal (or unreadable) time.
      items.sort((a, b) => b.at - a.at);
      return { type: 'list', items: items.map(({ item }) => item) };
    }
    case 'string': {
      const lasting = (value: KeyValue): number => (value.type !== 'string' ? -Infinity : value.expiresAtMs ?? Infinity);
      const kept = sources.reduce((best, source) => (lasting(source.value) > lasting(best.value) ? source : best));
      for (const source of sources) {
        if (source !== kept) unmapped.push({ key: source.key, reason: `the same request id is also in ${kept.key}, which lives longer and is kept` });
      }
      return kept.value;
    }
    case 'hash':
      return first.value;
  }
}

function entryTime(item: string): number {
  try {
    const at = (JSON.parse(item) as { at?: unknown }).at;
    const ms = typeof at === 'string' ? Date.parse(at) : typeof at === 'number' ? at : Number.NaN;
    return Number.isFinite(ms) ? ms : 0;
  } catch {
    return 0;
  }
}

/**
 * Whether a target key already holds what would be written: the same fields, members and
 * scores (compared as numbers), list items in order, string value (a request id's remaining
 * lifetime is not compared).
 */
export function sameValue(a: KeyValue, b: KeyValue): boolean {
  switch (a.type) {
    case 'hash': {
      if (b.type !== 'hash') return false;
      const names = Object.keys(a.fields);
      return names.length === Object.keys(b.fields).length && names.every((name) => b.fields[name] === a.fields[name]);
    }
    case 'zset': {
      if (b.type !== 'zset' || a.flat.length !== b.flat.length) return false;
      // Two reads of equal sorted sets list them in the same order (by score, then member).
      let inOrder = true;
      for (let i = 0; inOrder && i + 1 < a.flat.length; i += 2) {
        inOrder = a.flat[i] === b.flat[i] && Number(a.flat[i + 1]) === Number(b.flat[i + 1]);
      }
      if (inOrder) return true;
      const scores = new Map<string, number>();
      for (let i = 0; i + 1 < b.flat.length; i += 2) scores.set(b.flat[i] as string, Number(b.flat[i + 1]));
      for (let i = 0; i + 1 < a.flat.length; i += 2) if (scores.get(a.flat[i] as string) !== Number(a.flat[i + 1])) return false;
      return scores.size === a.flat.length / 2;
    }
    case 'list':
      return b.type === 'list' && a.items.length === b.items.length && a.items.every((item, index) => b.items[index] === item);
    case 'string':
      return b.type === 'string' && a.value === b.value;
  }
}

/** Per kind: keys to write, keys already equal in the target, keys that exist there and differ. */
export interface KindCounts {
  write: number;
  equal: number;
  conflict: number;
}

/** What one `tollgate migrate` run found and did. */
export interface MigrationReport {
  readonly to: KeyLayoutName;
  readonly dryRun: boolean;
  /** Keys the source SCAN returned, Tollgate's or not. */
  readonly sourceKeys: number;
  readonly kinds: Readonly<Record<MigratedKind, KindCounts>>;
  /** Keys written (0 on a dry run or a refusal). */
  readonly written: number;
  /** Request ids whose remaining lifetime ran out before they were written. */
  readonly expired: number;
  readonly conflicts: { readonly count: number; readonly first: readonly string[] };
  /** Keys never copied by design: reservation buckets and journal markers. */
  readonly leftOut: { readonly reservations: number; readonly journal: number };
  /** Keys under a Tollgate prefix that do not parse or have no home in the target layout. */
  readonly unmapped: { readonly count: number; readonly first: readonly UnmappedKey[] };
  /** Keys of other applications, left alone. */
  readonly otherKeys: number;
  /** Source usage counters and credit ledgers re-read at the end and found unchanged (0 on a dry run). */
  readonly verified: number;
  readonly elapsedMs: number;
  /** Wall time of each phase run: `read`, `check`, `write`, `verify`. */
  readonly phaseMs: Readonly<Partial<Record<'read' | 'check' | 'write' | 'verify', number>>>;
}

/** Target keys exist and differ from what would be written: nothing was written. */
export class MigrationConflictError extends ConflictError {
  readonly report: MigrationReport;

  constructor(report: MigrationReport) {
    super(
      ERROR_CODES.migrationConflict,
      `${report.conflicts.count} target keys exist and differ from what would be written, so nothing was written: ${report.conflicts.first.slice(0, 5).join(', ')}`,
    );
    this.report = report;
  }
}

/** The source changed while it was copied: the target holds a copy of a moving keyspace. */
export class SourceChangedError extends ConflictError {
  readonly report: MigrationReport;
  /** The first source keys found changed. */
  readonly changed: readonly string[];

  constructor(report: MigrationReport, changed: readonly string[], changedCount: number) {
    super(
      ERROR_CODES.sourceChanged,
      `${changedCount} source keys changed while they were copied (writers still running?): ${changed.slice(0, 5).join(', ')}; ` +
        'stop every writer, delete what this run wrote in the target, and run again',
    );
    this.report = report;
    this.changed = changed;
  }
}

// The operator's operations (show, quotas, limits, providers, orgs, API keys, credit budgets), shared by the CLI and the admin router.
import { randomBytes } from 'node:crypto';
import {
  apiKeyFields,
  CREATED_AT_PREFIX,
  LEGACY_KEY_NAME,
  MAP_KEY_NAME,
  maskedKey,
  sha256Hex,
  storedApiKeys,
  type StoredApiKey,
} from '../core/api-keys.js';
import { recordingOwners } from '../core/accounting.js';
import { dayMember, utcDay, yyyymm } from '../core/cycle.js';
import {
  CREDIT_FIELDS,
  ORGANIZATION_FIELD,
  PERIOD_END_DATE_FIELD,
  parseCount,
  parseFlag,
  resolveOwnerSettings,
  type RawHash,
} from '../core/config.js';
import { ConflictError, ERROR_CODES, InvalidConfigError, InvalidInputError, NotFoundError } from '../core/errors.js';
import type { Owner } from '../core/keys.js';
import type { KeyLayout } from '../core/layout.js';
import { assertName, nameProblem } from '../core/names.js';
import { QUOTA_KINDS, quotaKindSpec, type QuotaKind } from '../core/quota-kinds.js';
import { readHash, serverTimeMs } from '../redis/accounts.js';
import { bounded, isCluster, toTollgateError, type RedisClient } from '../redis/connection.js';
import { configKeyPattern, MOVING_TO_FIELD, nameOfConfigKey, readHome, type Home } from '../redis/homes.js';
import { moveHome } from '../redis/home-move.js';
import { orgMembers, ownerUsageKeys, scanPage } from '../redis/scan.js';
import { runConfigWrite, type ConfigWrite } from '../redis/scripts.js';
import { readAdjustments, runAdjustUsage } from '../redis/usage-adjustment.js';
import { findGarbledScores, removeGarbledScores, type GarbledScore } from '../redis/usage-repair.js';
import type { Tollgate, UsageSummary } from '../tollgate.js';
import { parseInput, toCredits, values } from './inputs.js';


/** Every admin call is bounded: an operator should see "Redis unavailable", not a hung prompt. */
const DEFAULT_ADMIN_TIMEOUT_MS = 5000;

/** Options of {@link AdminOperations}. */
export interface AdminOperationsOptions {
  /** Upper bound on each Redis call an operation makes. Default 5000 ms. */
  readonly timeoutMs?: number;
}

/** One quota kind as the CARTO user endpoint shows it (SPEC 5). */
export interface QuotaBlock {
  readonly quota: number;
  /** Price of a block of 1000 units past the quota, in cents; `null` when not configured. */
  readonly block_price: number | null;
  readonly monthly_use: number;
  /** The negation of the user's soft-limit flag. Absent on orgs, which have no soft limit. */
  readonly hard_limit?: boolean;
}

/** A user's credit budget (SPEC 6). Credits, not millicredits; -1 means no limit. */
export interface UserCredits {
  readonly username: string;
  readonly organization: string;
  readonly enabled: boolean;
  /** The allocation, or -1 for no limit. */
  readonly assignedCredits: number;
  /** Spent since the allocation was last set. */
  readonly spentCredits: number;
  /** Allocation minus spent, never more than the org balance; the org balance with no limit. */
  readonly availableCredits: number;
}

/** An org's credit settings (SPEC 6). */
export interface OrgCredits {
  readonly orgname: string;
  readonly enabled: boolean;
  /** The org's balance. */
  readonly credits: number;
  /** The allocation new members get; -1 when budgeting is off or no default is set. */
  readonly defaultLimit: number;
}

/** The CARTO dashboard blocks (SPEC 5) shared by the user and the org views. */
export interface DashboardView {
  readonly geocoding: QuotaBlock;
  readonly here_isolines: QuotaBlock;
  readonly mapzen_routing: QuotaBlock;
  readonly geocoder_provider: string;
  readonly isolines_provider: string;
  readonly routing_provider: string;
  readonly period_end_date: string | null;
}

/** A user as the CARTO endpoint shows it (SPEC 5), plus Tollgate's additions. */
export interface UserView extends DashboardView {
  readonly username: string;
  readonly organization: string | null;
  readonly has_api_key: boolean;
  /** Every key the user holds, masked ({@link ApiKeyListing}); `map_key` among them. */
  readonly api_keys: readonly ApiKeyListing[];
  readonly credits: UserCredits | null;
}

/** A member's own usage this cycle, per dashboard block name. */
export interface MemberUsage {
  readonly username: string;
  readonly geocoding: number;
  readonly here_isolines: number;
  readonly mapzen_routing: number;
}

/** An org with its pooled usage and each member's share. */
export interface OrgView extends DashboardView {
  readonly orgname: string;
  readonly credits: OrgCredits;
  readonly members: readonly MemberUsage[];
}

/** A freshly created API key: shown once, stored only as its digest. */
export interface CreatedApiKey {
  readonly username: string;
  readonly apiKey: string;
}

/** Which config hash a change applies to. */
export type AdminTarget = { readonly user: string } | { readonly org: string };

function ownerOf(target: AdminTarget): Owner {
  return 'user' in target
    ? { type: 'user', name: assertName('user', target.user) }
    : { type: 'org', name: assertName('org', (target as { org: string }).org) };
}

/** SHA-256 hex digest of an API key, as stored in the `api_key_sha256[:<name>]` fields. */
export function apiKeyDigest(apiKey: string): string {
  return sha256Hex(apiKey);
}

/** Things an operator should know about a change that was made anyway (CARTO's rules, kept as they are). */
export type Warnings = readonly string[];

/** What `repairUsage` found and did. */
export interface UsageRepair {
  /** Every score no decision can use. */
  readonly found: readonly GarbledScore[];
  /** Removed (only with `apply`). */
  readonly removed: readonly GarbledScore[];
  /** Changed since found: left alone; run again. */
  readonly skipped: readonly GarbledScore[];
}

/** A change's result with the warnings it raised; `warnings` is empty when there is nothing to say. */
export interface Changed<T = Record<string, never>> {
  readonly result: T;
  readonly warnings: Warnings;
}

/** One API key as listed: never the key or its digest; `map_key` shows its last 4 characters. */
export interface ApiKeyListing {
  readonly name: string;
  /** `clear` for CARTO's `map_key`, `sha256` for Tollgate's digests. */
  readonly form: 'clear' | 'sha256';
  /** `map_key` only: `****` and its last four characters. */
  readonly masked: string | null;
  /** ISO time the key was made by Tollgate, or `null` when unknown. */
  readonly created_at: string | null;
  /** ISO time from which the key is refused (a rotation's overlap end), or `null`. */
  readonly expires_at: string | null;
  /** `active`, `expired`, or `unusable` (a garbled digest or expiry). */
  readonly state: 'active' | 'expired' | 'unusable';
}

/** A page of user or org names. */
export interface NamePage {
  readonly names: readonly string[];
  /** Pass it back to get the next page; `"0"` when the listing is complete. */
  readonly cursor: string;
}

/** What deleting a user or org removed. */
export interface Deleted {
  readonly deleted: string;
  /** Usage and credit ledger keys removed with it (only with `withUsage`). */
  readonly usageKeys: number;
  /** The `YYYYMM` months those usage keys covered. */
  readonly months: readonly string[];
}

/** An operator's usage adjustment, as audited. */
export interface UsageAdjustment {
  readonly at: string;
  readonly user: string;
  readonly kind: QuotaKind;
  readonly units: number;
  readonly day: string;
  readonly keys: readonly string[];
  readonly reason: string | null;
  readonly actor: string;
}

/** The key name `create-key` uses when none is given. */
export const DEFAULT_NEW_KEY_NAME = 'main';
/** Default rotation overlap: one day. */
export const DEFAULT_OVERLAP_SECONDS = 86_400;
const RESERVED_KEY_NAMES = new Set([LEGACY_KEY_NAME, MAP_KEY_NAME]);

/** Whether a name found in Redis is safe to show and use as a key part (other tools may write odd keys). */
const nameOk = (name: string): boolean => nameProblem(name) === null;

/** A random key: `tg_` and 43 base64url characters (256 bits). */
function newApiKey(): string {
  return `tg_${randomBytes(32).toString('base64url')}`;
}

/** A name for a new key: a valid name that is not one of the reserved listing names. */
function newKeyName(name: unknown): string {
  const value = parseInput(values.keyName, name);
  if (RESERVED_KEY_NAMES.has(value)) {
    throw new InvalidInputError(ERROR_CODES.invalidName, `key name ${value} is reserved for an existing field; pick another`);
  }
  return value;
}

/** A name an existing key is listed under: a key name, or `map_key` / `default`. */
function existingKeyName(name: unknown): string {
  if (name === MAP_KEY_NAME || name === LEGACY_KEY_NAME) return name;
  return parseInput(values.keyName, name);
}

function isoOrNull(raw: string | undefined): string | null {
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return null;
  return new Date(Number(raw)).toISOString();
}

/** The masked listing of every key a user hash holds, judged at `nowMs`. */
function listingOf(hash: RawHash, nowMs: number): ApiKeyListing[] {
  return storedApiKeys(hash).map((key: StoredApiKey) => ({
    name: key.name,
    form: key.form,
    masked: key.form === 'clear' ? maskedKey(hash[key.field] ?? '') : null,
    created_at: isoOrNull(hash[CREATED_AT_PREFIX + key.name]),
    expires_at: key.expiresAtMs === null ? null : new Date(key.expiresAtMs).toISOString(),
    state: !key.usable ? 'unusable' : key.expiresAtMs !== null && key.expiresAtMs <= nowMs ? 'expired' : 'active',
  }));
}

/** The warning of SPEC 1's own-cycle case: a member of an org without `period_end_date` that has one itself. */
function ownCycleWarning(user: string, org: string, userHash: RawHash, orgHash: RawHash): string[] {
  const own = userHash[PERIOD_END_DATE_FIELD];
  if (orgHash[PERIOD_END_DATE_FIELD] !== undefined || own === undefined || own === '') return [];
  return [
    `org ${org} has no period_end_date, so member ${user} keeps its own billing cycle (from ${own}) while spending the shared pool; ` +
      `members may reset on different days: set one with "tollgate org set-period-end ${org} <date>"`,
  ];
}

/**
 * Operator actions on the CARTO config hashes and Tollgate's credit fields. Every input is
 * checked before anything is written, so a bad input changes nothing; every write is one run
 * of lua/config-write.lua, which re-checks what the change relies on (the hash exists, the
 * user is still in that org) in the same atomic step, so a change is seen whole or not at all.
 */
export class AdminOperations {
  readonly #tollgate: Tollgate;
  readonly #client: RedisClient;
  readonly #layout: KeyLayout;
  readonly #timeoutMs: number;

  /** Uses the Tollgate client's Redis connection and its quota logic. */
  constructor(tollgate: Tollgate, options: AdminOperationsOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 10 || timeoutMs > 600_000) {
      throw new InvalidInputError(ERROR_CODES.invalidOptions, 'timeoutMs must be an integer from 10 to 600000');
    }
    this.#tollgate = tollgate;
    this.#client = tollgate.redis;
    this.#layout = tollgate.keyLayout;
    this.#timeoutMs = timeoutMs;
  }

  /** The Tollgate client behind these operations. */
  get tollgate(): Tollgate {
    return this.#tollgate;
  }

  /** The Redis connection in use. */
  get redis(): RedisClient {
    return this.#client;
  }

  /** The key layout in use (the Tollgate client's). */
  get keyLayout(): KeyLayout {
    return this.#layout;
  }

  /** A user the way the CARTO user endpoint shows it (SPEC 5); org figures for an org member. */
  async showUser(user: string): Promise<UserView> {
    assertName('user', user);
    const hash = await this.#hash({ type: 'user', name: user });
    const infos = await Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.quota({ user: user, kind: kind })));
    const block = (index: number): QuotaBlock => {
      const info = infos[index]!;
      return { quota: info.quota, block_price: info.blockPrice, monthly_use: info.used, hard_limit: !info.softLimit };
    };
    const org = infos[0]!.org;
    const orgHash = org === null ? null : await this.#hash({ type: 'org', name: org });
    const keys = listingOf(hash, await this.#nowMs());
    return {
      username: user,
      organization: org,
      geocoding: block(0),
      here_isolines: block(1),
      mapzen_routing: block(2),
      geocoder_provider: infos[0]!.provider,
      isolines_provider: infos[1]!.provider,
      routing_provider: infos[2]!.provider,
      period_end_date: orgHash?.[PERIOD_END_DATE_FIELD] || hash[PERIOD_END_DATE_FIELD] || null,
      has_api_key: keys.some((key) => key.state === 'active'),
      api_keys: keys,
      credits: org === null ? null : await this.userCredits(user),
    };
  }

  /** An org with its pooled usage, its credits, and each member's own usage this cycle. */
  async showOrg(org: string): Promise<OrgView> {
    assertName('org', org);
    const key = this.#layout.orgConfigKey(org);
    const hash = await this.#hash({ type: 'org', name: org });
    const usages = await Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.usage({ org, kind: kind })));
    const block = (index: number): QuotaBlock => {
      const spec = quotaKindSpec(QUOTA_KINDS[index]);
      const price = hash[spec.blockPriceField];
      return {
        quota: parseCount(key, spec.quotaField, hash[spec.quotaField]),
        block_price: price === undefined || price === '' ? null : parseCount(key, spec.blockPriceField, price),
        monthly_use: usages[index]!.used,
      };
    };
    const members: MemberUsage[] = [];
    for await (const member of orgMembers(this.#client, org, this.#layout)) {
      const used = await Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.usage({ user: member, kind: kind })));
      members.push({ username: member, geocoding: used[0]!.used, here_isolines: used[1]!.used, mapzen_routing: used[2]!.used });
    }
    members.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
    return {
      orgname: org,
      geocoding: block(0),
      here_isolines: block(1),
      mapzen_routing: block(2),
      geocoder_provider: resolveOwnerSettings(key, hash, 'geocoding').provider,
      isolines_provider: resolveOwnerSettings(key, hash, 'isolines').provider,
      routing_provider: resolveOwnerSettings(key, hash, 'routing').provider,
      period_end_date: hash[PERIOD_END_DATE_FIELD] || null,
      credits: await this.orgCredits(org),
      members,
    };
  }

  /**
   * Creates a user hash (every quota at 0) or an org hash (budgeting off), values that mean
   * the same as the fields being absent, so no org field overrides its members by surprise.
   */
  async create(target: AdminTarget): Promise<void> {
    const owner = ownerOf(target);
    const key = owner.type === 'user' ? this.#layout.directoryKey(owner.name) : this.#layout.orgConfigKey(owner.name);
    const fields: Record<string, string> =
      owner.type === 'user'
        ? Object.fromEntries(QUOTA_KINDS.map((kind) => [quotaKindSpec(kind).quotaField, '0']))
        : { [CREDIT_FIELDS.enabled]: 'false' };
    await this.#write({ key, mode: 'create', set: fields });
  }

  /** Sets the quota of one kind on a user or org hash; warns when an org's quota overrides it. */
  async setQuota(target: AdminTarget, kind: QuotaKind, quota: unknown): Promise<Warnings> {
    const owner = ownerOf(target);
    const spec = quotaKindSpec(kind);
    const value = parseInput(values.quota, quota);
    const warnings = await this.#overriddenByOrg(owner, spec.quotaField, `${kind} quota`);
    await this.#ownerWrite(owner, { mode: 'update', set: { [spec.quotaField]: String(value) } });
    return warnings;
  }

  /** Sets (or, with `null`, removes) the price of a block of 1000 units past the quota, in cents. */
  async setBlockPrice(target: AdminTarget, kind: QuotaKind, cents: unknown): Promise<Warnings> {
    const owner = ownerOf(target);
    const field = quotaKindSpec(kind).blockPriceField;
    const value = cents === null ? null : parseInput(values.blockPrice, cents);
    const warnings = await this.#overriddenByOrg(owner, field, `${kind} block price`);
    await this.#ownerWrite(
      owner,
      value === null
        ? { mode: 'update', del: [field] }
        : { mode: 'update', set: { [field]: String(value) } },
    );
    return warnings;
  }

  /** Turns a user's soft limit for one kind on or off (orgs have none, SPEC 1). */
  async setSoftLimit(user: string, kind: QuotaKind, on: boolean): Promise<Warnings> {
    assertName('user', user);
    const spec = quotaKindSpec(kind);
    await this.#ownerWrite({ type: 'user', name: user }, { mode: 'update', set: { [spec.softLimitField]: on ? 'true' : 'false' } });
    return [];
  }

  /**
   * Sets the provider of one kind on a user or org hash. Warns when the change moves this
   * cycle's counting to other usage keys (the service type names the provider, so monthly_use
   * restarts from what the new keys hold), and when an org's provider overrides a member's.
   */
  async setProvider(target: AdminTarget, kind: QuotaKind, provider: unknown): Promise<Warnings> {
    const owner = ownerOf(target);
    const spec = quotaKindSpec(kind);
    const value = parseInput(values.provider, provider);
    const warnings = [...(await this.#overriddenByOrg(owner, spec.providerField, `${kind} provider`))];
    if (warnings.length === 0) warnings.push(...(await this.#providerMoveWarnings(owner, kind, value)));
    await this.#ownerWrite(owner, { mode: 'update', set: { [spec.providerField]: value } });
    return warnings;
  }

  /** Sets `period_end_date` (its day of month anchors the billing cycle); answers the stored form. */
  async setPeriodEndDate(target: AdminTarget, date: unknown): Promise<Changed<{ period_end_date: string }>> {
    const owner = ownerOf(target);
    const value = parseInput(values.date, date).periodEndDate;
    const warnings = await this.#overriddenByOrg(owner, PERIOD_END_DATE_FIELD, 'period_end_date');
    await this.#ownerWrite(owner, { mode: 'update', set: { [PERIOD_END_DATE_FIELD]: value } });
    return { result: { period_end_date: value }, warnings };
  }

  /**
   * Puts a user in an org (or takes it out with `null`). A new member starts with the org's
   * default allocation when budgeting is on and a default is set, else with no limit; its
   * spent counter starts at 0. Re-joining the same org keeps the current allocation. Warns
   * when the org has no `period_end_date` while the user has its own: the pool is shared but
   * the member's cycle follows its own day.
   */
  async setOrganization(user: string, org: string | null): Promise<Warnings> {
    assertName('user', user);
    if (org !== null) assertName('org', org);
    if (this.#layout.name === 'cluster') return this.#moveHome(user, org);
    const userKey = this.#layout.userConfigKey(user, null);
    if (org === null) {
      await this.#write({ key: userKey, mode: 'update', del: [ORGANIZATION_FIELD, CREDIT_FIELDS.allocation, CREDIT_FIELDS.spent] });
      return [];
    }
    const hash = await this.#hash({ type: 'user', name: user });
    const orgHash = await this.#hash({ type: 'org', name: org });
    const warnings = ownCycleWarning(user, org, hash, orgHash);
    if (hash[ORGANIZATION_FIELD] === org) return warnings;
    const defaultLimit = this.#defaultLimit(org, orgHash);
    await this.#write({
      key: userKey,
      mode: 'update',
      requires: [this.#layout.orgConfigKey(org)],
      // Joined from where it was when we looked: a concurrent move elsewhere is not overwritten.
      expect: { [ORGANIZATION_FIELD]: hash[ORGANIZATION_FIELD] ?? null },
      set: {
        [ORGANIZATION_FIELD]: org,
        [CREDIT_FIELDS.spent]: '0',
        ...(defaultLimit >= 0 ? { [CREDIT_FIELDS.allocation]: String(defaultLimit) } : {}),
      },
      del: defaultLimit >= 0 ? [] : [CREDIT_FIELDS.allocation],
    });
    return warnings;
  }

  /**
   * The cluster layout's join / leave / change of org: the move protocol of docs/cluster.md
   * (src/redis/home-move.ts). Running it again finishes a move that stopped half-way; for a
   * user already where it should be, it only finishes a pending last step.
   */
  async #moveHome(user: string, org: string | null): Promise<Warnings> {
    const home = await this.#home(user);
    const orgHash = org === null ? null : await this.#hash({ type: 'org', name: org });
    const warnings = org === null || orgHash === null ? [] : ownCycleWarning(user, org, home.hash, orgHash);
    const defaultLimit = org === null || orgHash === null ? -1 : this.#defaultLimit(org, orgHash);
    const nowMs = await this.#nowMs();
    await this.#call(() =>
      moveHome(
        this.#client,
        this.#layout,
        user,
        org,
        () => ({
          drop: [CREDIT_FIELDS.allocation, CREDIT_FIELDS.spent],
          set:
            org === null
              ? {}
              : {
                  [ORGANIZATION_FIELD]: org,
                  [CREDIT_FIELDS.spent]: '0',
                  ...(defaultLimit >= 0 ? { [CREDIT_FIELDS.allocation]: String(defaultLimit) } : {}),
                },
        }),
        nowMs,
      ),
    );
    return warnings;
  }

  /**
   * Creates a named API key for a user (default name {@link DEFAULT_NEW_KEY_NAME}); the user's
   * other keys keep working. Only its SHA-256 digest is stored, in `api_key_sha256:<name>`, with
   * its creation time; the key itself is returned once and never again. A name in use is
   * refused (rotate it instead).
   */
  async createApiKey(user: string, name: unknown = DEFAULT_NEW_KEY_NAME): Promise<CreatedApiKey & { readonly name: string }> {
    assertName('user', user);
    const keyName = newKeyName(name);
    const fields = apiKeyFields(keyName);
    const hash = await this.#hash({ type: 'user', name: user });
    if (hash[fields.key] !== undefined) {
      throw new ConflictError(ERROR_CODES.alreadyExists, `user ${user} already has a key named ${keyName}: revoke or rotate it, or pick another name`);
    }
    const apiKey = newApiKey();
    const nowMs = await this.#nowMs();
    await this.#ownerWrite({ type: 'user', name: user }, {
      mode: 'update',
      expect: { [fields.key]: null },
      set: { [fields.key]: apiKeyDigest(apiKey), [fields.createdAt]: String(nowMs) },
      del: [fields.expiresAt],
    });
    return { username: user, name: keyName, apiKey };
  }

  /** The user's keys, masked: names, forms, creation and expiry times; never a key or digest. */
  async listApiKeys(user: string): Promise<ApiKeyListing[]> {
    assertName('user', user);
    return listingOf(await this.#hash({ type: 'user', name: user }), await this.#nowMs());
  }

  /**
   * Revokes one key: deletes its digest (or `map_key`) and its expiry and creation fields, so
   * the next request with it is refused. Without a name, the user's only key is revoked; with
   * several, the name is required. Answers whether a key was removed.
   */
  async revokeApiKey(user: string, name?: unknown): Promise<{ name: string | null; revoked: boolean }> {
    assertName('user', user);
    const hash = await this.#hash({ type: 'user', name: user });
    let keyName: string;
    if (name === undefined || name === null) {
      const held = storedApiKeys(hash);
      if (held.length === 0) return { name: null, revoked: false };
      if (held.length > 1) {
        throw new InvalidInputError(ERROR_CODES.invalidArgument, `user ${user} has ${held.length} keys (${held.map((key) => key.name).join(', ')}): name the one to revoke`);
      }
      keyName = held[0]!.name;
    } else {
      keyName = existingKeyName(name);
    }
    const fields = apiKeyFields(keyName);
    const deleted = await this.#ownerWrite({ type: 'user', name: user }, { mode: 'update', del: [fields.key, fields.expiresAt, fields.createdAt] });
    return { name: keyName, revoked: deleted > 0 && hash[fields.key] !== undefined };
  }

  /**
   * Replaces a key with a new one while the old keeps working for `overlapSeconds` (server
   * clock), so clients can switch without an outage. The new key takes `newName`, or the old
   * key's name; then the old digest moves to `<name>-prev` (a `map_key` always moves, as a
   * digest: its clear text is not kept). Answers the new key, shown once.
   */
  async rotateApiKey(
    user: string,
    name: unknown,
    options: { readonly newName?: unknown; readonly overlapSeconds?: unknown } = {},
  ): Promise<CreatedApiKey & { readonly name: string; readonly previous: string; readonly previousExpiresAt: string }> {
    assertName('user', user);
    const oldName = existingKeyName(name);
    const overlapSeconds = options.overlapSeconds === undefined ? DEFAULT_OVERLAP_SECONDS : parseInput(values.overlapSeconds, options.overlapSeconds);
    const hash = await this.#hash({ type: 'user', name: user });
    const old = storedApiKeys(hash).find((key) => key.name === oldName);
    if (old === undefined || old.digest === null) {
      throw new NotFoundError(ERROR_CODES.unknownApiKey, `user ${user} has no usable key named ${oldName}`);
    }
    const nowMs = await this.#nowMs();
    const newName = options.newName === undefined ? (oldName === MAP_KEY_NAME ? DEFAULT_NEW_KEY_NAME : oldName) : newKeyName(options.newName);
    const moves = newName === oldName || oldName === MAP_KEY_NAME;
    const previous = moves ? `${oldName.replace(/_/g, '-').slice(0, 27)}-prev` : oldName;
    const oldFields = apiKeyFields(oldName);
    const previousFields = apiKeyFields(previous);
    const newFields = apiKeyFields(newName);
    if (newName !== oldName && hash[newFields.key] !== undefined) {
      throw new ConflictError(ERROR_CODES.alreadyExists, `user ${user} already has a key named ${newName}`);
    }
    if (moves) {
      const waiting = storedApiKeys(hash).find((key) => key.name === previous);
      if (waiting !== undefined && waiting.usable && (waiting.expiresAtMs === null || waiting.expiresAtMs > nowMs)) {
        throw new ConflictError(ERROR_CODES.concurrentChange, `the previous rotation of ${oldName} is still in its overlap (${previous}); revoke ${previous} first or wait`);
      }
    }
    const expiresAtMs = nowMs + overlapSeconds * 1000;
    const apiKey = newApiKey();
    const set: Record<string, string> = {
      [previousFields.expiresAt]: String(expiresAtMs),
      [newFields.key]: apiKeyDigest(apiKey),
      [newFields.createdAt]: String(nowMs),
    };
    const del: string[] = [newFields.expiresAt];
    if (moves) {
      set[previousFields.key] = old.digest.toString('hex');
      const created = hash[oldFields.createdAt];
      if (created !== undefined) set[previousFields.createdAt] = created;
      else del.push(previousFields.createdAt);
      if (oldName !== newName) del.push(oldFields.key, oldFields.expiresAt, oldFields.createdAt);
    }
    await this.#ownerWrite({ type: 'user', name: user }, {
      mode: 'update',
      // Rotated from what we read: a concurrent rotation or revocation makes this one fail whole.
      expect: { [oldFields.key]: hash[oldFields.key] ?? null, [newFields.key]: newName === oldName ? (hash[oldFields.key] ?? null) : null },
      set,
      del: del.filter((field) => !(field in set)),
    });
    return { username: user, name: newName, apiKey, previous, previousExpiresAt: new Date(expiresAtMs).toISOString() };
  }

  /** A page of user (or org) names from a SCAN of their config hashes; `cursor` `"0"` starts. */
  async list(type: 'user' | 'org', cursor: unknown = '0', count: unknown = 100): Promise<NamePage> {
    if (typeof cursor !== 'string') throw new InvalidInputError(ERROR_CODES.invalidArgument, 'cursor must be a string');
    const size = typeof count === 'string' ? Number(count) : count;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > 10_000) {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, 'count must be an integer from 1 to 10000');
    }
    const page = await this.#call(() => scanPage(this.#client, configKeyPattern(this.#layout, type), cursor, size));
    const names = page.keys
      .map((key) => nameOfConfigKey(this.#layout, type, key))
      .filter((name): name is string => name !== null && nameOk(name))
      .sort();
    return { names, cursor: page.cursor };
  }

  /**
   * Deletes a user or org hash. Refused while usage or credit-ledger keys of it exist, unless
   * `withUsage` (then they go too); an org is never deleted while it has members.
   */
  async delete(target: AdminTarget, options: { readonly withUsage?: boolean } = {}): Promise<Deleted> {
    const owner = ownerOf(target);
    const home = owner.type === 'user' ? await this.#home(owner.name) : null;
    const hash = home?.hash ?? (await this.#hash(owner));
    if (home !== null && home.hash[MOVING_TO_FIELD] !== undefined) throw this.#moving(home);
    if (owner.type === 'org') {
      const members: string[] = [];
      for await (const member of orgMembers(this.#client, owner.name, this.#layout)) members.push(member);
      if (members.length > 0) {
        throw new ConflictError(ERROR_CODES.hasMembers, `org ${owner.name} has ${members.length} member(s) (${members.slice(0, 5).join(', ')}${members.length > 5 ? ', ...' : ''}): move them out first`);
      }
    }
    const usageKeys = await this.#call(() => ownerUsageKeys(this.#client, owner, this.#layout));
    if (usageKeys.length > 0 && options.withUsage !== true) {
      throw new ConflictError(ERROR_CODES.hasUsage, `${owner.type} ${owner.name} has ${usageKeys.length} usage key(s): pass --with-usage (with_usage=true) to delete them too`);
    }
    // Deleting every field removes the hash, in the same guarded script as every other change;
    // a field written meanwhile makes it fail rather than leave a half-deleted hash.
    await this.#write({
      key: home?.key ?? this.#layout.orgConfigKey(owner.name),
      mode: 'update',
      expect: Object.fromEntries(Object.entries(hash)),
      del: Object.keys(hash),
    });
    // Cluster layout, org member: its directory entry goes after its member hash.
    if (home !== null && home.key !== home.directoryKey) {
      await this.#write({
        key: home.directoryKey,
        mode: 'update',
        expect: Object.fromEntries(Object.entries(home.directory)),
        del: Object.keys(home.directory),
      });
    }
    for (let i = 0; i < usageKeys.length; i += 500) {
      const batch = usageKeys.slice(i, i + 500);
      // A cluster refuses one UNLINK over several slots: one call per key there.
      if (isCluster(this.#client)) await this.#call(() => Promise.all(batch.map((key) => this.#client.unlink(key))));
      else await this.#call(() => this.#client.unlink(...batch));
    }
    const months = [...new Set(usageKeys.map((key) => this.#layout.parseUsageKey(key)?.yyyymm).filter((month): month is string => month !== undefined))].sort();
    return { deleted: `${owner.type}:${owner.name}`, usageKeys: usageKeys.length, months };
  }

  /**
   * Credits back `units` of a user's usage of one kind today (UTC, server clock): the kind's
   * charged metric drops by `units` on today's member of the user's key and, for an org member,
   * of the pool's key; the adjustment is appended to `tollgate:adjustments:<user>` in the same
   * atomic step. Refused when the cycle holds fewer counted units than `units`.
   */
  async adjustUsage(user: string, kind: unknown, units: unknown, options: { readonly reason?: string; readonly actor?: string } = {}): Promise<UsageAdjustment> {
    assertName('user', user);
    const quotaKind = parseInput(values.kind, kind);
    const amount = parseInput(values.units, units);
    const reason = options.reason === undefined || options.reason === '' ? null : options.reason;
    if (reason !== null && (reason.length > 200 || /\p{Cc}/u.test(reason))) {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, 'reason must be at most 200 characters, without control characters');
    }
    const [info, own] = await Promise.all([this.#tollgate.quota({ user: user, kind: quotaKind }), this.#tollgate.usage({ user, kind: quotaKind })]);
    if (own.used < amount) {
      throw new ConflictError(ERROR_CODES.adjustmentTooLarge, `${user} used ${own.used} ${quotaKind} units this cycle: cannot credit back ${amount}`);
    }
    const nowMs = await this.#nowMs();
    const today = utcDay(nowMs);
    const month = yyyymm(today.year, today.month);
    const metric = quotaKindSpec(quotaKind).chargedMetric;
    const keys = recordingOwners(user, info.org).map((owner) => this.#layout.usageKey(owner, info.org, info.serviceType, metric, month));
    const entry: UsageAdjustment = {
      at: new Date(nowMs).toISOString(),
      user,
      kind: quotaKind,
      units: amount,
      day: dayMember(today.day),
      keys,
      reason,
      actor: options.actor ?? 'operator',
    };
    const status = await this.#call(() =>
      runAdjustUsage(this.#client, { auditKey: this.#layout.adjustmentLogKey(user, info.org), usageKeys: keys, day: entry.day, units: amount, entry: { ...entry } }),
    );
    if (status === 'wrong_type') throw new InvalidConfigError(keys.join(', '), '', 'a usage or audit key holds the wrong Redis type; nothing was written');
    return entry;
  }

  /** The newest usage adjustments made for a user (at most `limit`). */
  async adjustments(user: string, limit = 20): Promise<Array<Record<string, unknown>>> {
    assertName('user', user);
    const home = await this.#home(user);
    return this.#call(() => readAdjustments(this.#client, this.#layout.adjustmentLogKey(user, home.org), limit));
  }

  /**
   * Usage scores of a user's or an org's keys that no decision can use (negative, fractional,
   * past 2^53 - 1): the decide script refuses such an owner with ERR_TOLLGATE_INVALID_CONFIG
   * until they are repaired. With `apply`, each is removed (its day counts as 0), only if it still
   * holds what was found.
   */
  async repairUsage(target: AdminTarget, options: { readonly apply?: boolean } = {}): Promise<UsageRepair> {
    const owner = ownerOf(target);
    const garbled = await this.#call(() => findGarbledScores(this.#client, owner, this.#layout));
    if (options.apply !== true || garbled.length === 0) return { found: garbled, removed: [], skipped: [] };
    const result = await this.#call(() => removeGarbledScores(this.#client, garbled));
    return { found: garbled, removed: [...result.removed], skipped: [...result.skipped] };
  }

  /** An org's balance, whether budgeting is on, and its default limit (-1 when off or unset). */
  async orgCredits(org: string): Promise<OrgCredits> {
    assertName('org', org);
    const hash = await this.#hash({ type: 'org', name: org });
    return {
      orgname: org,
      enabled: parseFlag(hash[CREDIT_FIELDS.enabled]),
      credits: toCredits(parseCount(this.#layout.orgConfigKey(org), CREDIT_FIELDS.balance, hash[CREDIT_FIELDS.balance])),
      defaultLimit: toCredits(this.#defaultLimit(org, hash)),
    };
  }

  /** Sets an org's balance. */
  async setOrgCredits(org: string, credits: unknown): Promise<OrgCredits> {
    assertName('org', org);
    const millicredits = parseInput(values.credits, credits);
    await this.#write({ key: this.#layout.orgConfigKey(org), mode: 'update', set: { [CREDIT_FIELDS.balance]: String(millicredits) } });
    return this.orgCredits(org);
  }

  /** Adds to an org's balance atomically (safe while members spend). */
  async addOrgCredits(org: string, credits: unknown): Promise<OrgCredits> {
    assertName('org', org);
    const millicredits = parseInput(values.credits, credits);
    await this.#write({ key: this.#layout.orgConfigKey(org), mode: 'update', incr: { [CREDIT_FIELDS.balance]: millicredits } });
    return this.orgCredits(org);
  }

  /** Turns budgeting on or off for an org's members. */
  async setBudgeting(org: string, enabled: boolean): Promise<OrgCredits> {
    assertName('org', org);
    await this.#write({ key: this.#layout.orgConfigKey(org), mode: 'update', set: { [CREDIT_FIELDS.enabled]: enabled ? 'true' : 'false' } });
    return this.orgCredits(org);
  }

  /** Sets (or, with `null`, clears) the allocation new members get. Existing members are untouched. */
  async setDefaultLimit(org: string, credits: unknown): Promise<OrgCredits> {
    assertName('org', org);
    const millicredits = credits === null || credits === undefined ? null : parseInput(values.credits, credits);
    await this.#write(
      millicredits === null
        ? { key: this.#layout.orgConfigKey(org), mode: 'update', del: [CREDIT_FIELDS.defaultLimit] }
        : { key: this.#layout.orgConfigKey(org), mode: 'update', set: { [CREDIT_FIELDS.defaultLimit]: String(millicredits) } },
    );
    return this.orgCredits(org);
  }

  /**
   * Gives an org member an allocation: it may spend that many credits from now on (its spent
   * counter restarts at 0). With `null` the member has no limit, as {@link deallocate}.
   */
  async allocate(user: string, credits: unknown): Promise<UserCredits> {
    assertName('user', user);
    const millicredits = credits === null || credits === undefined ? null : parseInput(values.credits, credits);
    const { org } = await this.#memberOrg(user);
    await this.#ownerWrite({ type: 'user', name: user }, {
      mode: 'update',
      requires: [this.#layout.orgConfigKey(org)],
      // An allocation is from one org's budget: refuse it if the user moved meanwhile.
      expect: { [ORGANIZATION_FIELD]: org },
      set: {
        [CREDIT_FIELDS.spent]: '0',
        ...(millicredits === null ? {} : { [CREDIT_FIELDS.allocation]: String(millicredits) }),
      },
      del: millicredits === null ? [CREDIT_FIELDS.allocation] : [],
    });
    return this.userCredits(user);
  }

  /** Back to no limit: the member spends from the org balance alone. */
  async deallocate(user: string): Promise<UserCredits> {
    return this.allocate(user, null);
  }

  /** A member's assigned (-1 for no limit), spent and available credits. */
  async userCredits(user: string): Promise<UserCredits> {
    assertName('user', user);
    const { org, userHash, orgHash, userKey } = await this.#memberOrg(user);
    const rawAllocation = userHash[CREDIT_FIELDS.allocation];
    const allocation = rawAllocation === undefined || rawAllocation === '' ? null : parseCount(userKey, CREDIT_FIELDS.allocation, rawAllocation);
    const spent = parseCount(userKey, CREDIT_FIELDS.spent, userHash[CREDIT_FIELDS.spent]);
    const balance = parseCount(this.#layout.orgConfigKey(org), CREDIT_FIELDS.balance, orgHash[CREDIT_FIELDS.balance]);
    const available = allocation === null ? balance : Math.min(balance, Math.max(0, allocation - spent));
    return {
      username: user,
      organization: org,
      enabled: parseFlag(orgHash[CREDIT_FIELDS.enabled]),
      assignedCredits: allocation === null ? -1 : toCredits(allocation),
      spentCredits: toCredits(spent),
      availableCredits: toCredits(available),
    };
  }

  /** Current-cycle usage of every quota kind, for a user's own counters or an org's pool. */
  async usage(target: AdminTarget): Promise<UsageSummary[]> {
    const owner = ownerOf(target);
    await this.#hash(owner);
    const usageOwner = owner.type === 'user' ? { user: owner.name } : { org: owner.name };
    return Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.usage({ ...usageOwner, kind })));
  }

  /** The Redis server's clock, the one every decision uses. */
  async #nowMs(): Promise<number> {
    return this.#call(() => serverTimeMs(this.#client));
  }

  /**
   * Warnings for a change to a member's own `field` that its org's hash overrides (SPEC 1:
   * the org's value applies where it has the field), and for a member's own period end when
   * its org has none.
   */
  async #overriddenByOrg(owner: Owner, field: string, what: string): Promise<string[]> {
    if (owner.type !== 'user') return [];
    const hash = await this.#hash(owner);
    const org = hash[ORGANIZATION_FIELD];
    if (org === undefined || org === '' || !nameOk(org)) return [];
    const orgHash = await this.#call(() => readHash(this.#client, this.#layout.orgConfigKey(org)));
    if (Object.hasOwn(orgHash, field)) {
      return [`user ${owner.name} is a member of org ${org}, whose ${what} (${field}) applies: this value is stored but has no effect while ${owner.name} stays in ${org}`];
    }
    if (field === PERIOD_END_DATE_FIELD) {
      return [`org ${org} has no period_end_date, so ${owner.name}'s own date sets its billing cycle while it spends the shared pool; other members may reset on other days`];
    }
    return [];
  }

  /** The warning for a provider change that moves this cycle's counting to other usage keys. */
  async #providerMoveWarnings(owner: Owner, kind: QuotaKind, provider: string): Promise<string[]> {
    const spec = quotaKindSpec(kind);
    const current = await this.#tollgate.usage(owner.type === 'user' ? { user: owner.name, kind } : { org: owner.name, kind });
    const next = spec.serviceType(provider);
    if (current.serviceType === next || current.used === 0) return [];
    return [
      `changing the ${kind} provider moves counting from ${current.serviceType} to ${next} keys mid-cycle: ` +
        `the ${current.used} units used this cycle stay under ${current.serviceType} and no longer count, so monthly_use restarts from what ${next} holds`,
    ];
  }

  /**
   * Fails with {@link NotFoundError} unless the owner's config exists; returns a user's
   * decision-field hash (its home: in the cluster layout a member's member hash) or the org hash.
   */
  async #hash(owner: Owner): Promise<RawHash> {
    if (owner.type === 'user') return (await this.#home(owner.name)).hash;
    const key = this.#layout.orgConfigKey(owner.name);
    const hash = await this.#call(() => readHash(this.#client, key));
    if (Object.keys(hash).length === 0) throw new NotFoundError(ERROR_CODES.unknownOrg, `unknown org: no ${key} hash`);
    return hash;
  }

  /**
   * A user's directory entry and home (src/redis/homes.ts). A member whose member hash is
   * missing (a move stopped half-way, or `organization` set by hand) is
   * {@link InvalidConfigError} naming the fix.
   */
  async #home(user: string): Promise<Home> {
    const home = await this.#call(() => readHome(this.#client, this.#layout, user));
    if (Object.keys(home.hash).length === 0) {
      throw new InvalidConfigError(
        home.directoryKey,
        ORGANIZATION_FIELD,
        `names org ${home.org ?? ''} but ${home.key} does not exist: run "tollgate user set-org ${user} ${home.org ?? ''}" to finish a move, or fix the directory entry`,
      );
    }
    return home;
  }

  /** The refusal of a change to a user that is moving between pools. */
  #moving(home: Home): ConflictError {
    return new ConflictError(
      ERROR_CODES.concurrentChange,
      `user ${home.user} is moving to ${home.hash[MOVING_TO_FIELD] ?? '?'}: finish the move (run the same set-org / leave-org again), then retry`,
    );
  }

  /**
   * One guarded change of a user's home or an org hash. In the cluster layout a user's change
   * also requires that the user is not moving (its home has no `moving_to`): a change written
   * to a home being copied away would be lost.
   */
  async #ownerWrite(owner: Owner, write: Omit<ConfigWrite, 'key'>): Promise<number> {
    if (owner.type === 'org') return this.#write({ ...write, key: this.#layout.orgConfigKey(owner.name) });
    const home = await this.#home(owner.name);
    if (this.#layout.name !== 'cluster') return this.#write({ ...write, key: home.key });
    if (home.hash[MOVING_TO_FIELD] !== undefined) throw this.#moving(home);
    return this.#write({ ...write, key: home.key, expect: { ...write.expect, [MOVING_TO_FIELD]: null } });
  }

  /** The org a user belongs to, with both hashes; {@link ConflictError} for a user outside any org. */
  async #memberOrg(user: string): Promise<{ org: string; userKey: string; userHash: RawHash; orgHash: RawHash }> {
    const home = await this.#home(user);
    if (home.org === null) {
      throw new ConflictError(ERROR_CODES.notInOrg, `user ${user} is in no org: credit budgets belong to orgs`);
    }
    const org = assertName('org', home.org);
    return { org, userKey: home.key, userHash: home.hash, orgHash: await this.#hash({ type: 'org', name: org }) };
  }

  /** The default limit in millicredits, or -1 when budgeting is off or no default is set. */
  #defaultLimit(org: string, hash: RawHash): number {
    const raw = hash[CREDIT_FIELDS.defaultLimit];
    if (!parseFlag(hash[CREDIT_FIELDS.enabled]) || raw === undefined || raw === '') return -1;
    return parseCount(this.#layout.orgConfigKey(org), CREDIT_FIELDS.defaultLimit, raw);
  }

  /** Applies one guarded change; answers how many fields its `del` part removed. */
  async #write(write: ConfigWrite): Promise<number> {
    const reply = await this.#call(() => runConfigWrite(this.#client, write));
    const notFound = (key: string): NotFoundError => {
      const isUser = nameOfConfigKey(this.#layout, 'org', key) === null;
      return new NotFoundError(isUser ? ERROR_CODES.unknownUser : ERROR_CODES.unknownOrg, `unknown ${isUser ? 'user' : 'org'}: no ${key} hash`);
    };
    switch (reply.status) {
      case 'done':
        return reply.deleted;
      case 'missing':
        throw notFound(reply.key);
      case 'exists':
        throw new ConflictError(ERROR_CODES.alreadyExists, `already exists: ${write.key}`);
      case 'changed':
        if (reply.field === MOVING_TO_FIELD) throw new ConflictError(ERROR_CODES.concurrentChange, `${write.key} is moving to another pool: finish the move (run the same set-org / leave-org again), then retry`);
        throw new ConflictError(ERROR_CODES.concurrentChange, `${write.key} field ${reply.field} changed meanwhile; nothing was written, retry`);
      case 'wrong_type':
        throw new InvalidConfigError(reply.key, '', 'holds the wrong Redis type; nothing was written');
      case 'bad_counter':
        throw new InvalidConfigError(write.key, reply.field, 'not an integer in [0, 10^15] after this change; nothing was written');
    }
  }

  #call<T>(call: () => Promise<T>): Promise<T> {
    return bounded(this.#timeoutMs, call).catch((error: unknown) => {
      throw toTollgateError(error);
    });
  }
}

// The operator's operations (show, quotas, limits, providers, orgs, API keys, credit budgets), shared by the CLI and the admin router.
import { createHash, randomBytes } from 'node:crypto';
import {
  API_KEY_SHA256_FIELD,
  CREDIT_FIELDS,
  ORGANIZATION_FIELD,
  PERIOD_END_DATE_FIELD,
  parseCount,
  parseFlag,
  resolveOwnerSettings,
  type RawHash,
} from '../core/config.js';
import { ConflictError, ERROR_CODES, InvalidConfigError, InvalidInputError, NotFoundError } from '../core/errors.js';
import { configKey, orgConfigKey, userConfigKey, type Owner } from '../core/keys.js';
import { assertName } from '../core/names.js';
import { QUOTA_KINDS, quotaKindSpec, type QuotaKind } from '../core/quota-kinds.js';
import { readHash } from '../redis/accounts.js';
import { bounded, toTollgateError, type RedisClient } from '../redis/connection.js';
import { orgMembers } from '../redis/scan.js';
import { runConfigWrite, type ConfigWrite } from '../redis/scripts.js';
import type { Tollgate, UsageSummary } from '../tollgate.js';
import { parseCredits, parsePeriodEndDate, parseProvider, parseQuota, toCredits } from './inputs.js';


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

/** SHA-256 hex digest of an API key, as stored in {@link API_KEY_SHA256_FIELD}. */
export function apiKeyDigest(apiKey: string): string {
  return createHash('sha256').update(apiKey, 'utf8').digest('hex');
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
  readonly #timeoutMs: number;

  /** Uses the Tollgate client's Redis connection and its quota logic. */
  constructor(tollgate: Tollgate, options: AdminOperationsOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 10 || timeoutMs > 600_000) {
      throw new InvalidInputError(ERROR_CODES.invalidOptions, 'timeoutMs must be an integer from 10 to 600000');
    }
    this.#tollgate = tollgate;
    this.#client = tollgate.redis;
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

  /** A user the way the CARTO user endpoint shows it (SPEC 5); org figures for an org member. */
  async showUser(user: string): Promise<UserView> {
    assertName('user', user);
    const hash = await this.#hash({ type: 'user', name: user });
    const infos = await Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.quota(user, kind)));
    const block = (index: number): QuotaBlock => {
      const info = infos[index]!;
      return { quota: info.quota, block_price: info.blockPrice, monthly_use: info.used, hard_limit: !info.softLimit };
    };
    const org = infos[0]!.org;
    const orgHash = org === null ? null : await this.#hash({ type: 'org', name: org });
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
      has_api_key: Boolean(hash[API_KEY_SHA256_FIELD]),
      credits: org === null ? null : await this.userCredits(user),
    };
  }

  /** An org with its pooled usage, its credits, and each member's own usage this cycle. */
  async showOrg(org: string): Promise<OrgView> {
    assertName('org', org);
    const key = orgConfigKey(org);
    const hash = await this.#hash({ type: 'org', name: org });
    const usages = await Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.usage({ org }, kind)));
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
    for await (const member of orgMembers(this.#client, org)) {
      const used = await Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.usage({ user: member }, kind)));
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
    const key = configKey(owner);
    const fields: Record<string, string> =
      owner.type === 'user'
        ? Object.fromEntries(QUOTA_KINDS.map((kind) => [quotaKindSpec(kind).quotaField, '0']))
        : { [CREDIT_FIELDS.enabled]: 'false' };
    await this.#write({ key, mode: 'create', set: fields });
  }

  /** Sets the quota of one kind on a user or org hash. */
  async setQuota(target: AdminTarget, kind: QuotaKind, quota: unknown): Promise<void> {
    const owner = ownerOf(target);
    const spec = quotaKindSpec(kind);
    const value = parseQuota(quota);
    await this.#write({ key: configKey(owner), mode: 'update', set: { [spec.quotaField]: String(value) } });
  }

  /** Turns a user's soft limit for one kind on or off (orgs have none, SPEC 1). */
  async setSoftLimit(user: string, kind: QuotaKind, on: boolean): Promise<void> {
    assertName('user', user);
    const spec = quotaKindSpec(kind);
    await this.#write({ key: userConfigKey(user), mode: 'update', set: { [spec.softLimitField]: on ? 'true' : 'false' } });
  }

  /** Sets the provider of one kind on a user or org hash. */
  async setProvider(target: AdminTarget, kind: QuotaKind, provider: unknown): Promise<void> {
    const owner = ownerOf(target);
    const spec = quotaKindSpec(kind);
    const value = parseProvider(provider);
    await this.#write({ key: configKey(owner), mode: 'update', set: { [spec.providerField]: value } });
  }

  /** Sets `period_end_date` (its day of month anchors the billing cycle). */
  async setPeriodEndDate(target: AdminTarget, date: unknown): Promise<string> {
    const owner = ownerOf(target);
    const value = parsePeriodEndDate(date);
    await this.#write({ key: configKey(owner), mode: 'update', set: { [PERIOD_END_DATE_FIELD]: value } });
    return value;
  }

  /**
   * Puts a user in an org (or takes it out with `null`). A new member starts with the org's
   * default allocation when budgeting is on and a default is set, else with no limit; its
   * spent counter starts at 0. Re-joining the same org keeps the current allocation.
   */
  async setOrganization(user: string, org: string | null): Promise<void> {
    assertName('user', user);
    if (org !== null) assertName('org', org);
    const userKey = userConfigKey(user);
    if (org === null) {
      await this.#write({ key: userKey, mode: 'update', del: [ORGANIZATION_FIELD, CREDIT_FIELDS.allocation, CREDIT_FIELDS.spent] });
      return;
    }
    const hash = await this.#hash({ type: 'user', name: user });
    const orgHash = await this.#hash({ type: 'org', name: org });
    if (hash[ORGANIZATION_FIELD] === org) return;
    const defaultLimit = this.#defaultLimit(org, orgHash);
    await this.#write({
      key: userKey,
      mode: 'update',
      requires: [orgConfigKey(org)],
      // Joined from where it was when we looked: a concurrent move elsewhere is not overwritten.
      expect: { [ORGANIZATION_FIELD]: hash[ORGANIZATION_FIELD] ?? null },
      set: {
        [ORGANIZATION_FIELD]: org,
        [CREDIT_FIELDS.spent]: '0',
        ...(defaultLimit >= 0 ? { [CREDIT_FIELDS.allocation]: String(defaultLimit) } : {}),
      },
      del: defaultLimit >= 0 ? [] : [CREDIT_FIELDS.allocation],
    });
  }

  /**
   * Creates a new API key for a user, replacing any previous one. Only its SHA-256 digest is
   * stored; the key itself is returned once and never again.
   */
  async createApiKey(user: string): Promise<CreatedApiKey> {
    assertName('user', user);
    const apiKey = `tg_${randomBytes(32).toString('base64url')}`;
    await this.#write({ key: userConfigKey(user), mode: 'update', set: { [API_KEY_SHA256_FIELD]: apiKeyDigest(apiKey) } });
    return { username: user, apiKey };
  }

  /** Removes a user's API key digest; answers whether there was one. */
  async revokeApiKey(user: string): Promise<boolean> {
    assertName('user', user);
    return (await this.#write({ key: userConfigKey(user), mode: 'update', del: [API_KEY_SHA256_FIELD] })) === 1;
  }

  /** An org's balance, whether budgeting is on, and its default limit (-1 when off or unset). */
  async orgCredits(org: string): Promise<OrgCredits> {
    assertName('org', org);
    const hash = await this.#hash({ type: 'org', name: org });
    return {
      orgname: org,
      enabled: parseFlag(hash[CREDIT_FIELDS.enabled]),
      credits: toCredits(parseCount(orgConfigKey(org), CREDIT_FIELDS.balance, hash[CREDIT_FIELDS.balance])),
      defaultLimit: toCredits(this.#defaultLimit(org, hash)),
    };
  }

  /** Sets an org's balance. */
  async setOrgCredits(org: string, credits: unknown): Promise<OrgCredits> {
    assertName('org', org);
    const millicredits = parseCredits(credits);
    await this.#write({ key: orgConfigKey(org), mode: 'update', set: { [CREDIT_FIELDS.balance]: String(millicredits) } });
    return this.orgCredits(org);
  }

  /** Adds to an org's balance atomically (safe while members spend). */
  async addOrgCredits(org: string, credits: unknown): Promise<OrgCredits> {
    assertName('org', org);
    const millicredits = parseCredits(credits);
    await this.#write({ key: orgConfigKey(org), mode: 'update', incr: { [CREDIT_FIELDS.balance]: millicredits } });
    return this.orgCredits(org);
  }

  /** Turns budgeting on or off for an org's members. */
  async setBudgeting(org: string, enabled: boolean): Promise<OrgCredits> {
    assertName('org', org);
    await this.#write({ key: orgConfigKey(org), mode: 'update', set: { [CREDIT_FIELDS.enabled]: enabled ? 'true' : 'false' } });
    return this.orgCredits(org);
  }

  /** Sets (or, with `null`, clears) the allocation new members get. Existing members are untouched. */
  async setDefaultLimit(org: string, credits: unknown): Promise<OrgCredits> {
    assertName('org', org);
    const millicredits = credits === null || credits === undefined ? null : parseCredits(credits);
    await this.#write(
      millicredits === null
        ? { key: orgConfigKey(org), mode: 'update', del: [CREDIT_FIELDS.defaultLimit] }
        : { key: orgConfigKey(org), mode: 'update', set: { [CREDIT_FIELDS.defaultLimit]: String(millicredits) } },
    );
    return this.orgCredits(org);
  }

  /**
   * Gives an org member an allocation: it may spend that many credits from now on (its spent
   * counter restarts at 0). With `null` the member has no limit, as {@link deallocate}.
   */
  async allocate(user: string, credits: unknown): Promise<UserCredits> {
    assertName('user', user);
    const millicredits = credits === null || credits === undefined ? null : parseCredits(credits);
    const { org } = await this.#memberOrg(user);
    await this.#write({
      key: userConfigKey(user),
      mode: 'update',
      requires: [orgConfigKey(org)],
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
    const { org, userHash, orgHash } = await this.#memberOrg(user);
    const userKey = userConfigKey(user);
    const rawAllocation = userHash[CREDIT_FIELDS.allocation];
    const allocation = rawAllocation === undefined || rawAllocation === '' ? null : parseCount(userKey, CREDIT_FIELDS.allocation, rawAllocation);
    const spent = parseCount(userKey, CREDIT_FIELDS.spent, userHash[CREDIT_FIELDS.spent]);
    const balance = parseCount(orgConfigKey(org), CREDIT_FIELDS.balance, orgHash[CREDIT_FIELDS.balance]);
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
    return Promise.all(QUOTA_KINDS.map((kind) => this.#tollgate.usage(usageOwner, kind)));
  }

  /** Fails with {@link NotFoundError} unless the owner's config hash exists; returns it. */
  async #hash(owner: Owner): Promise<RawHash> {
    const key = configKey(owner);
    const hash = await this.#call(() => readHash(this.#client, key));
    if (Object.keys(hash).length === 0) {
      throw new NotFoundError(
        owner.type === 'user' ? ERROR_CODES.unknownUser : ERROR_CODES.unknownOrg,
        `unknown ${owner.type}: no ${key} hash`,
      );
    }
    return hash;
  }

  /** The org a user belongs to, with both hashes; {@link ConflictError} for a user outside any org. */
  async #memberOrg(user: string): Promise<{ org: string; userHash: RawHash; orgHash: RawHash }> {
    const userHash = await this.#hash({ type: 'user', name: user });
    const org = userHash[ORGANIZATION_FIELD];
    if (org === undefined || org === '') {
      throw new ConflictError(ERROR_CODES.notInOrg, `user ${user} is in no org: credit budgets belong to orgs`);
    }
    assertName('org', org);
    return { org, userHash, orgHash: await this.#hash({ type: 'org', name: org }) };
  }

  /** The default limit in millicredits, or -1 when budgeting is off or no default is set. */
  #defaultLimit(org: string, hash: RawHash): number {
    const raw = hash[CREDIT_FIELDS.defaultLimit];
    if (!parseFlag(hash[CREDIT_FIELDS.enabled]) || raw === undefined || raw === '') return -1;
    return parseCount(orgConfigKey(org), CREDIT_FIELDS.defaultLimit, raw);
  }

  /** Applies one guarded change; answers how many fields its `del` part removed. */
  async #write(write: ConfigWrite): Promise<number> {
    const reply = await this.#call(() => runConfigWrite(this.#client, write));
    const notFound = (key: string): NotFoundError => {
      const isUser = key.startsWith(userConfigKey(''));
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

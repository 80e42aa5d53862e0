// The Tollgate client: check, consume and settle quota against Redis, and read quotas and usage back.
import calculateSlot from 'cluster-key-slot';
import { z } from 'zod';
import {
  admissibleUnits,
  assertCost,
  assertReservation,
  breakdownOf,
  chargeCheck,
  decisionOf,
  pendingValue,
  planCredits,
  planDecision,
  refundKeys,
  reservationFromSignature,
  reservationSignature,
  settlementIncrements,
  type CreditPlan,
  type Decision,
  type DecisionPlan,
  type Outcome,
  type Reservation,
} from './core/accounting.js';
import { MAX_API_KEY_LENGTH, apiKeyMatches, sha256, storedApiKeys, type StoredApiKey } from './core/api-keys.js';
import { CREDIT_FIELDS, MOVING_FIELD, resolveAccount, resolveCreditBudget, resolveOwnerSettings, type Account } from './core/config.js';
import { billingCycle, dayOfMember, dayStartMs, utcDay } from './core/cycle.js';
import {
  AuthenticationError,
  ConflictError,
  ContentionError,
  CounterLimitError,
  ERROR_CODES,
  InvalidConfigError,
  InvalidInputError,
  NotFoundError,
  RedisUnavailableError,
  ReservationError,
} from './core/errors.js';
import { reservationParts, type Owner } from './core/keys.js';
import { assertName } from './core/names.js';
import { METRICS, quotaKindSpec, type Metric, type QuotaKind } from './core/quota-kinds.js';
import { AccountCache, readOrg, serverTimeMs, type CachedAccount } from './redis/accounts.js';
import { CallDeadlines, isCluster, neverSent, type RedisClient } from './redis/connection.js';
import { readSortedSets } from './redis/sorted-sets.js';
import { NOOP_OBSERVER, type RedisOperation, type TollgateLogger, type TollgateObserver } from './core/observer.js';
import { observeDecision, observeFailure, observeSettle } from './core/observer.js';
import { defaultLogger } from './observability/logging.js';
import { ReadyWait, watchConnection } from './redis/watch.js';
import { ReservationIds, SettleBatcher } from './redis/reservations.js';
import { compileDecidePlan, defineScripts, runDecide, type CompiledPlan, type DecideReply } from './redis/scripts.js';
import { CLUSTER_NEEDS_LAYOUT, clientFor, isClusterOption, redisOption } from './redis/topology.js';
import { KEY_LAYOUT_NAMES, keyLayout, type KeyLayout, type KeyLayoutName } from './core/layout.js';
import type { RedisTarget } from './core/redis-target.js';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/**
 * Default credit prices, in credits per 1000 units (= millicredits per unit), after ArcGIS
 * Online's published rates: 40 credits per 1000 geocodes, 0.5 credits per service area
 * (isoline), 0.005 credits per simple route. Integers, so every charge is exact.
 */
export const DEFAULT_CREDIT_PRICES: Readonly<Record<QuotaKind, number>> = Object.freeze({
  geocoding: 40,
  isolines: 500,
  routing: 5,
});

// A price above 10^6 per 1000 units (1000 credits a unit) is surely a typo for a smaller unit.
const creditPrice = z.number().int().min(0).max(1_000_000);

const optionsSchema = z.strictObject({
  redis: redisOption,
  clock: z.custom<() => number>((value) => typeof value === 'function', 'must be a function returning epoch ms').optional(),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  requestIdTtlMs: z.number().int().min(1000).max(30 * 24 * HOUR_MS).default(24 * HOUR_MS),
  reservationTtlMs: z.number().int().min(1000).max(7 * 24 * HOUR_MS).default(5 * MINUTE_MS),
  maxAttempts: z.number().int().min(1).max(50).default(5),
  configCacheMs: z.number().int().min(0).max(10 * MINUTE_MS).default(MINUTE_MS),
  configCacheMaxUsers: z.number().int().min(1).max(10_000_000).default(10_000),
  waitForReplicas: z.number().int().min(0).max(16).default(0),
  creditPrices: z
    .strictObject({ geocoding: creditPrice.optional(), isolines: creditPrice.optional(), routing: creditPrice.optional() })
    .optional()
    .transform((prices) => Object.freeze({ ...DEFAULT_CREDIT_PRICES, ...prices })),
  observer: z.custom<TollgateObserver>((value) => typeof (value as TollgateObserver | null)?.decision === 'function', 'must be a TollgateObserver').optional(),
  logger: z.custom<TollgateLogger>((value) => typeof (value as TollgateLogger | null)?.warn === 'function', 'must be a logger (pino)').optional(),
  keyLayout: z.enum(KEY_LAYOUT_NAMES as [KeyLayoutName, ...KeyLayoutName[]]).default('carto'),
}).superRefine((options, context) => {
  // A reservation must outlive any write of its admission: past the call timeout decide.lua writes nothing.
  if (options.reservationTtlMs < options.timeoutMs) {
    context.addIssue({ code: 'custom', message: 'must be at least timeoutMs', path: ['reservationTtlMs'] });
  }
  if (isClusterOption(options.redis)) {
    if (options.keyLayout !== 'cluster') context.addIssue({ code: 'custom', message: CLUSTER_NEEDS_LAYOUT, path: ['keyLayout'] });
  }
});

/** Options of {@link Tollgate}. Unknown keys are rejected when it is constructed. */
export interface TollgateOptions {
  /**
   * An ioredis client to use (one server, a Sentinel-built client, a `Cluster`), or what to
   * open: a `redis://` URL, a list of cluster seed URLs, or a {@link RedisTarget}
   * (`redisTargetFromEnv(process.env)`). A Redis Cluster needs `keyLayout: 'cluster'`.
   */
  readonly redis: RedisClient | RedisTarget | string | readonly string[];
  /**
   * Where keys live. `carto` (default): CARTO's names (`rails:users:<u>`, `user:<u>:...`), for
   * one Redis or Sentinel. `cluster`: every key of one decision in its pool's hash slot
   * (`rails:users:{user:<u>}`, `org:{org:<o>}:...`), required on a Redis Cluster and usable on
   * any Redis. `tollgate migrate` copies a keyspace from one to the other (docs/cluster.md).
   */
  readonly keyLayout?: KeyLayoutName;
  /**
   * Returns the current time in epoch ms. Default: the Redis server's clock, so app servers
   * with skewed clocks agree on the day and the cycle. Meant for tests.
   */
  readonly clock?: () => number;
  /** Upper bound on every call, connection problems included. Default 1000 ms. */
  readonly timeoutMs?: number;
  /** How long a request id is remembered, so a retried consume counts once. Default 24 h. */
  readonly requestIdTtlMs?: number;
  /**
   * How long an admitted request may still be settled (at least; up to a minute more); after that
   * its charge simply stays and its reservation is gone from Redis. Default 5 min.
   */
  readonly reservationTtlMs?: number;
  /** How often a decision is re-planned when config or the day changes under it. Default 5. */
  readonly maxAttempts?: number;
  /**
   * How long a user's config may be reused between decisions, in ms; 0 reads it every time.
   * Default 60,000. Never a correctness trade: the decide script re-checks every config field
   * it relies on (API key fields included), so a change is seen by the very next decision (at
   * the cost of a retry). `quota()` always reads afresh, so what operators read is current.
   */
  readonly configCacheMs?: number;
  /** Most users whose config is kept at once; the oldest goes first. Default 10,000. */
  readonly configCacheMaxUsers?: number;
  /**
   * Replicas that must acknowledge an admission (Redis `WAIT`) before consume answers; 0, the
   * default, answers at once. With fewer acks within `timeoutMs`, consume fails with
   * ERR_TOLLGATE_REDIS_UNAVAILABLE and the admission is refunded, so a failover cannot lose an
   * admission that was served (docs/cluster.md).
   */
  readonly waitForReplicas?: number;
  /**
   * Credits each quota kind costs, in credits per 1000 units (integers, so millicredits per
   * unit). Charged only for members of orgs with budgeting on. Default {@link DEFAULT_CREDIT_PRICES}.
   */
  readonly creditPrices?: Partial<Readonly<Record<QuotaKind, number>>>;
  /** Receives decisions, units, settles, Redis errors and cache lookups: `createMetrics().observer`, or several combined. Default none. */
  readonly observer?: TollgateObserver;
  /** Where Tollgate and the guards built on it log (a pino logger). Default JSON lines on stderr. */
  readonly logger?: TollgateLogger;
}

/** What to judge: `cost` units of a quota kind for a user. */
export interface CheckRequest {
  readonly user: string;
  readonly kind: QuotaKind;
  /** Units judged up front: rows of a bulk geocode, ranges of an isolines request. Default 1, at most 10^9. */
  readonly cost?: number;
}

/** What to admit: like {@link CheckRequest}, with an optional id that makes retries count once. */
export interface ConsumeRequest extends CheckRequest {
  /**
   * A client-chosen id; a consume repeated with it within `requestIdTtlMs` is not counted again.
   * A repeat must ask for the same kind and cost in the same cycle, else it is refused
   * (`ERR_TOLLGATE_REQUEST_ID_REUSED`) and nothing is charged.
   */
  readonly requestId?: string;
  /**
   * The caller's API key, to authenticate in the same round trip: it must be one of the user's
   * live keys (`map_key` or a stored digest), else the consume throws {@link AuthenticationError}
   * and counts nothing. The decision re-checks the key fields atomically, so a key revoked a
   * moment ago is refused.
   */
  readonly apiKey?: string;
}

/** An admitted consume: the decision and the reservation to settle if the outcome is not a plain success. */
export type AdmittedAdmission = Decision & {
  readonly allowed: true;
  /** Pass it to {@link Tollgate.settle} when the request ends as anything but `success`. */
  readonly reservation: Reservation;
  /** True when this answers a repeated request id: nothing was counted this time. */
  readonly replayed: boolean;
};

/** A refused consume: the decision, nothing charged. */
export type DeniedAdmission = Decision & {
  readonly allowed: false;
  readonly reservation: null;
  readonly replayed: false;
};

/** The decision of a consume: narrow on `allowed` to reach the reservation. */
export type Admission = AdmittedAdmission | DeniedAdmission;

/** What a settlement did. */
export interface SettleResult {
  /** `already_settled` means an earlier settle of this reservation applied; nothing changed now. */
  readonly status: 'settled' | 'already_settled';
}

/** How many of `cost` units could be admitted now, without counting anything. */
export interface BulkCheck {
  readonly decision: Decision;
  /** Units that fit: all of them under a soft limit, else at most what remains; and, under a credit budget, what the credits pay for. */
  readonly admissible: number;
}

/** A quota kind as an operator sees it for one user (org figures for an org member). */
export interface QuotaInfo {
  readonly user: string;
  readonly org: string | null;
  readonly kind: QuotaKind;
  readonly quota: number;
  readonly used: number;
  readonly remaining: number;
  readonly softLimit: boolean;
  readonly provider: string;
  readonly serviceType: string;
  /** Price of a block of 1000 units past the quota, in cents; `null` when not configured. */
  readonly blockPrice: number | null;
  readonly cycleStart: Date;
  readonly resetsAt: Date;
}

/** Whose usage to read: a user's own counters, or an org's pooled ones. */
export type UsageOwner = { readonly user: string } | { readonly org: string };

/** Which counters {@link Tollgate.usage} reads: an owner and a quota kind. */
export type UsageRequest = UsageOwner & { readonly kind: QuotaKind };

/** Which quota {@link Tollgate.quota} reads. */
export interface QuotaRequest {
  readonly user: string;
  readonly kind: QuotaKind;
}

/** An owner's counters for one quota kind over the current billing cycle. */
export interface UsageSummary {
  readonly owner: Owner;
  readonly kind: QuotaKind;
  readonly serviceType: string;
  readonly cycleStart: Date;
  readonly resetsAt: Date;
  /** Sum of each metric from the cycle start to today inclusive. */
  readonly metrics: Readonly<Record<Metric, number>>;
  /** The quota's usage: the sum of the kind's counted metrics. */
  readonly used: number;
}

type ParsedOptions = z.output<typeof optionsSchema>;

/** The admission a consume has sent and not yet heard back about. */
interface InFlight {
  reservation: Reservation | null;
  readonly startedMs: number;
}

/** Everything a decision needs that holds for one account, one quota kind and one UTC day. */
interface KindPlan {
  readonly account: Account;
  readonly plan: DecisionPlan;
  readonly credits: CreditPlan | null;
  readonly compiled: CompiledPlan;
  /** The reservation check of admissions under this plan (see chargeCheck). */
  readonly check: string;
  readonly cycleStartMs: number;
  readonly resetsAtMs: number;
  /** What a replay of a request id must ask for, minus the cost: `<kind>|<cycleStart>|`. */
  readonly matchPrefix: string;
}

/** What one decision produced, for the public methods to shape. */
interface Decided {
  readonly decision: Decision;
  readonly account: Account;
  readonly reservation: Reservation | null;
  readonly replayed: boolean;
}

/** First pause before re-reading a user that is moving between pools; grows with each attempt. */
const MOVE_PAUSE_MS = 20;
/** Slack past a caller's deadline before refunding, for the clocks' granularity. */
const DEADLINE_MARGIN_MS = 50;
/** Key of the parsed API keys in a cached account's derived data. */
const API_KEYS = 'apiKeys';

/** Key fields shaped like a user's, checked in place of an unknown user's (see #account). */
const DECOY_HASH = Object.freeze({ map_key: 'decoy-map-key-never-matches-anything', api_key_sha256: '0'.repeat(64) });

/** A pause that does not keep the process alive. */
const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/**
 * Quota enforcement on Redis. Construct once per process and share it; every method is
 * safe to call concurrently from any number of processes.
 *
 * @example
 * const tollgate = new Tollgate({ redis: 'redis://127.0.0.1:6379' });
 * const admission = await tollgate.consume({ user: 'alice', kind: 'geocoding', cost: 3 });
 * if (admission.allowed) await tollgate.settle(admission.reservation, { success: 2, failed: 1 });
 */
export class Tollgate {
  readonly #client: RedisClient;
  readonly #ownsClient: boolean;
  readonly #options: Readonly<ParsedOptions>;
  readonly #layout: KeyLayout;
  readonly #accounts: AccountCache;
  readonly #ids: ReservationIds;
  readonly #settler: SettleBatcher;
  readonly #deadlines: CallDeadlines;
  readonly #observer: TollgateObserver;
  readonly #logger: TollgateLogger;
  /** Refunds of admissions whose answer was lost, still running. */
  readonly #refunds = new Set<Promise<void>>();
  /** What refunds wait on while the connection is down, instead of polling. */
  readonly #readyWait: ReadyWait;
  /** Removes the connection listeners this Tollgate added to its client. */
  readonly #unwatch: () => void;
  #closing = false;

  constructor(options: TollgateOptions) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`);
      throw new InvalidInputError(ERROR_CODES.invalidOptions, `invalid Tollgate options: ${detail.join('; ')}`);
    }
    this.#options = Object.freeze(parsed.data);
    this.#layout = keyLayout(parsed.data.keyLayout);
    ({ client: this.#client, owned: this.#ownsClient } = clientFor(parsed.data.redis, parsed.data.timeoutMs));
    defineScripts(this.#client);
    this.#accounts = new AccountCache(this.#client, parsed.data.configCacheMs, parsed.data.configCacheMaxUsers, this.#layout);
    this.#ids = new ReservationIds(parsed.data.reservationTtlMs, this.#layout);
    this.#settler = new SettleBatcher(this.#client);
    this.#readyWait = new ReadyWait(this.#client);
    this.#deadlines = new CallDeadlines(parsed.data.timeoutMs);
    this.#observer = parsed.data.observer ?? NOOP_OBSERVER;
    this.#logger = parsed.data.logger ?? defaultLogger();
    this.#unwatch = watchConnection(this.#client, this.#observer);
  }

  /** The observer given at construction (a no-op by default); the guards report to it too. */
  get observer(): TollgateObserver {
    return this.#observer;
  }

  /** The logger given at construction (JSON on stderr by default); the guards log through it too. */
  get logger(): TollgateLogger {
    return this.#logger;
  }

  /** The key layout in use: where the admin tools and reports find config and counters. */
  get keyLayout(): KeyLayout {
    return this.#layout;
  }

  /** The ioredis client in use, for callers that share it (the admin tools, health checks). */
  get redis(): RedisClient {
    return this.#client;
  }

  /** Credit prices in use, in credits per 1000 units (millicredits per unit), defaults filled in. */
  get creditPrices(): Readonly<Record<QuotaKind, number>> {
    return this.#options.creditPrices;
  }

  /** Judges `cost` units without counting anything. */
  async check(request: CheckRequest): Promise<Decision> {
    const { user, kind, cost } = this.#validate(request);
    const startedMs = performance.now();
    const decision = await this.#bounded(async () => (await this.#decide(user, kind, cost, 'check', null, null)).decision, 'check');
    observeDecision(this.#observer, 'check', decision, startedMs);
    return decision;
  }

  /**
   * Judges `cost` units and, when allowed, charges them in the same atomic step, as a success.
   * Settle the returned reservation when the request ends otherwise (empty, failed, a split);
   * a success needs no settle.
   */
  async consume(request: ConsumeRequest): Promise<Admission> {
    const { user, kind, cost } = this.#validate(request);
    const requestId = request.requestId === undefined ? null : assertName('request id', request.requestId);
    const apiKey = request.apiKey === undefined ? null : presentedDigest(request.apiKey);
    const unanswered: InFlight = { reservation: null, startedMs: performance.now() };
    try {
      const admission = await this.#bounded(async () => {
        const { decision, reservation, replayed } = await this.#decide(user, kind, cost, 'consume', requestId, apiKey, unanswered);
        // The decision object is this call's own: extend it rather than copy it.
        return Object.assign(decision, { reservation, replayed }) as Admission;
      }, 'consume');
      observeDecision(this.#observer, 'consume', admission, unanswered.startedMs);
      return admission;
    } catch (error) {
      // The caller is told Redis was unavailable. If an admission was sent and never answered,
      // it may still have charged: refund it, unless a request id lets the caller's retry
      // collect that admission instead (then it is charged once and served once). One the
      // client refused unsent (no connection, no offline queue) cannot charge: nothing to refund,
      // and an outage must not pile up a refund per request, each retrying until Redis is back.
      if (error instanceof RedisUnavailableError && requestId === null && unanswered.reservation !== null && !neverSent(error)) {
        this.#refundUnanswered(unanswered.reservation, unanswered.startedMs);
      }
      throw error;
    }
  }

  /**
   * Records how an admitted request ended. `success` and `empty` units stay charged (under
   * their metric); `failed` units are refunded and recorded as failed_responses. Settling
   * the same reservation again changes nothing and answers `already_settled`. Settlements made
   * at the same moment go to Redis together, in one script call.
   */
  async settle(reservation: Reservation, outcome: Outcome): Promise<SettleResult> {
    const checked = assertReservation(reservation);
    const breakdown = breakdownOf(outcome, checked.cost);
    const { bucket, field } = reservationParts(checked.id);
    const layout = this.#layout;
    const bucketKey = layout.reservationBucketKey(checked.user, checked.org, bucket);
    const creditKey = checked.org === null ? layout.userConfigKey(checked.user, null) : layout.orgConfigKey(checked.org);
    const reply = await this.#bounded(() =>
      this.#settler.submit(
        {
          bucketKey,
          field,
          pendingValue: pendingValue(chargeCheck(checked), checked.cost),
          day: checked.day,
          increments: settlementIncrements(checked, breakdown, layout),
          failedUnits: breakdown.failed,
          creditKeys: refundKeys(checked, layout),
        },
        layout.poolTag(checked.user, checked.org),
      ),
      'settle',
    );
    observeSettle(this.#observer, checked, outcome, reply === 'settled' || reply === 'already_settled' ? reply : 'rejected', breakdown.failed);
    switch (reply) {
      case 'settled':
      case 'already_settled':
        return { status: reply };
      case 'unknown':
        throw new ReservationError(ERROR_CODES.unknownReservation, 'no such reservation: never made, or past its settle window (its charge stays)');
      case 'mismatch':
        throw new ReservationError(ERROR_CODES.unknownReservation, 'reservation does not match the one admitted');
      case 'wrong_type':
        throw new InvalidConfigError(bucketKey, '', 'a key of this reservation holds the wrong Redis type; nothing was written');
      case 'bad_credits':
        throw new InvalidConfigError(creditKey, CREDIT_FIELDS.balance, 'a credit counter is not an integer; nothing was refunded');
    }
  }

  /** How many of `cost` units would be admitted now (a bulk pre-check); counts nothing. */
  async checkBulk(request: CheckRequest): Promise<BulkCheck> {
    const cost = assertCost(request.cost === undefined ? 1 : request.cost);
    const decision = await this.check({ user: request.user, kind: request.kind, cost });
    let admissible = admissibleUnits(decision, cost);
    const credits = decision.credits;
    if (credits !== null && credits.costMillicredits > 0) {
      const perUnit = credits.costMillicredits / cost;
      admissible = Math.min(admissible, Math.floor(credits.availableMillicredits / perUnit));
    }
    return { decision, admissible };
  }

  /** A user's quota, usage, limit and provider for one kind (the org's pool for an org member). */
  async quota(request: QuotaRequest): Promise<QuotaInfo> {
    if (typeof request !== 'object' || request === null) throw new InvalidInputError(ERROR_CODES.invalidArgument, 'expected a request object');
    const user = assertName('user', request.user);
    const kind = quotaKindSpec(request.kind).kind;
    return this.#bounded(async () => {
      const { decision, account } = await this.#decide(user, kind, 0, 'check', null, null, undefined, true);
      return {
        user,
        org: account.org,
        kind,
        quota: decision.quota,
        used: decision.used,
        remaining: decision.remaining,
        softLimit: decision.softLimit,
        provider: account.provider,
        serviceType: account.serviceType,
        blockPrice: account.blockPrice,
        cycleStart: decision.cycleStart,
        resetsAt: decision.resetsAt,
      };
    }, 'quota');
  }

  /**
   * Every metric of one quota kind over the current cycle, for a user's own counters or an
   * org's pool. A member's cycle and provider are its org's, as for decisions.
   */
  async usage(request: UsageRequest): Promise<UsageSummary> {
    if (typeof request !== 'object' || request === null) throw new InvalidInputError(ERROR_CODES.invalidArgument, 'expected a request object');
    const spec = quotaKindSpec(request.kind);
    const kind = spec.kind;
    const target: Owner = 'user' in request
      ? { type: 'user', name: assertName('user', request.user) }
      : { type: 'org', name: assertName('org', (request as { org: string }).org) };
    return this.#bounded(async () => {
      let serviceType: string;
      let periodEndDay: number | null;
      let nowMs: number;
      // The org whose slot holds the counters (cluster layout): a member's own are in its org's.
      let home: string | null;
      if (target.type === 'user') {
        const entry = await this.#accounts.load(target.name);
        const account = this.#resolve(entry, kind);
        ({ serviceType, periodEndDay } = account);
        home = account.org;
        nowMs = this.#options.clock?.() ?? Date.now() + entry.offsetMs;
      } else {
        home = target.name;
        const [org, serverNowMs] = await Promise.all([readOrg(this.#client, target.name, this.#layout), serverTimeMs(this.#client)]);
        ({ serviceType, periodEndDay } = resolveOwnerSettings(org.key, org.hash, kind));
        nowMs = this.#options.clock?.() ?? serverNowMs;
      }
      const cycle = billingCycle(utcDay(nowMs), periodEndDay);
      const reads = METRICS.flatMap((metric) =>
        cycle.spans.map((span) => ({ metric, span, key: this.#layout.usageKey(target, home, serviceType, metric, span.yyyymm) })),
      );
      const metrics = Object.fromEntries(METRICS.map((metric) => [metric, 0])) as Record<Metric, number>;
      const results = await readSortedSets(this.#client, reads.map((read) => read.key));
      reads.forEach((read, index) => {
        const flat = results[index];
        if (flat === undefined || flat instanceof Error) throw new InvalidConfigError(read.key, '', 'holds the wrong Redis type');
        for (let i = 0; i < flat.length; i += 2) {
          const day = dayOfMember(flat[i] as string);
          if (day !== null && day >= read.span.fromDay && day <= read.span.toDay) metrics[read.metric] += Number(flat[i + 1]);
        }
      });
      return {
        owner: target,
        kind,
        serviceType,
        cycleStart: new Date(dayStartMs(cycle.start)),
        resetsAt: new Date(dayStartMs(cycle.nextStart)),
        metrics,
        used: spec.countedMetrics.reduce((sum, metric) => sum + metrics[metric], 0),
      };
    }, 'usage');
  }

  /**
   * Waits for refunds of unanswered admissions still in progress (each gives up after one
   * more attempt once closing), then closes the Redis connection if Tollgate opened it; a
   * client passed in is left to its owner. A refund that cannot reach Redis before then is
   * abandoned: that charge stays, which never lets usage pass a quota.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#readyWait.release();
    await Promise.allSettled([...this.#refunds]);
    this.#unwatch();
    if (this.#ownsClient) await this.#client.quit().catch(() => this.#client.disconnect());
  }

  /**
   * Settles an admission whose answer was lost as `failed`, retrying while Redis is away
   * (while disconnected it waits for the connection rather than polling). It first waits out
   * the caller's deadline: past it decide.lua refuses to charge, so no copy of the admission
   * (a re-send after reconnecting) can land after this refund.
   */
  #refundUnanswered(reservation: Reservation, startedMs: number): void {
    const refund = (async () => {
      await sleep(Math.max(0, startedMs + this.#options.timeoutMs - performance.now()) + DEADLINE_MARGIN_MS);
      const giveUpAt = Date.now() + this.#options.reservationTtlMs;
      let pauseMs = 100;
      for (;;) {
        try {
          await this.settle(reservation, 'failed');
          return;
        } catch (error) {
          // Unknown reservation: the admission never charged. Anything but "unavailable": nothing to retry.
          if (!(error instanceof RedisUnavailableError)) return;
        }
        if (this.#closing || Date.now() >= giveUpAt) return;
        if (this.#readyWait.ready) {
          // Connected, yet unanswered (a slow or busy server): again after a growing pause.
          await sleep(pauseMs);
          pauseMs = Math.min(pauseMs * 2, 5000);
        } else {
          // Disconnected: wait for the connection to be back, one listener for every refund, and
          // go together (the settles of one moment share a script call) instead of polling an outage.
          await this.#readyWait.wait(giveUpAt - Date.now());
        }
      }
    })();
    this.#refunds.add(refund);
    void refund.finally(() => this.#refunds.delete(refund));
  }

  #validate(request: CheckRequest): { user: string; kind: QuotaKind; cost: number } {
    if (typeof request !== 'object' || request === null) {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, 'expected a request object');
    }
    const user = assertName('user', request.user);
    const kind = quotaKindSpec(request.kind).kind;
    const cost = assertCost(request.cost === undefined ? 1 : request.cost);
    return { user, kind, cost };
  }

  /**
   * With `waitForReplicas`, holds an admission until that many replicas acknowledged it
   * (WAIT covers every write this connection made so far, so this one too). Fewer acks:
   * throws "unavailable" with the reservation marked unanswered, so consume refunds it.
   */
  async #awaitReplicas(startedMs: number, unanswered: InFlight | undefined, reservation: Reservation): Promise<void> {
    const replicas = this.#options.waitForReplicas;
    if (replicas === 0) return;
    if (unanswered !== undefined) unanswered.reservation = reservation;
    // WAIT ends a little before the caller's deadline, so its answer (not the timer) says why.
    const budgetMs = Math.floor(this.#options.timeoutMs - (performance.now() - startedMs)) - DEADLINE_MARGIN_MS;
    const acked = budgetMs >= 1 ? await this.#waitOn(reservation, replicas, budgetMs) : 0;
    if (acked < replicas) {
      throw new RedisUnavailableError(`the admission was not acknowledged by ${replicas} replica(s) within ${this.#options.timeoutMs} ms; it is refunded (or, with a request id, collected by a retry)`);
    }
    if (unanswered !== undefined) unanswered.reservation = null;
  }

  /**
   * Sends WAIT where it covers the admission: WAIT counts the writes of the connection it is
   * sent on, so on a cluster it goes to the connection of the master serving the pool's slot
   * (the one that ran decide.lua), found in the client's slot map.
   */
  #waitOn(reservation: Reservation, replicas: number, timeoutMs: number): Promise<number> {
    const client = this.#client;
    if (!isCluster(client)) return client.wait(replicas, timeoutMs);
    // Every key of the admission carries the pool's hash tag, so the tag alone names the slot.
    const master = client.slots[calculateSlot(this.#layout.poolTag(reservation.user, reservation.org))]?.[0];
    const node = client.nodes('master').find((candidate) => `${candidate.options.host}:${candidate.options.port}` === master);
    if (node === undefined) throw new RedisUnavailableError('no master serves the admission\'s slot right now; it is refunded (or, with a request id, collected by a retry)');
    return node.wait(replicas, timeoutMs);
  }

  #bounded<T>(call: () => Promise<T>, operation: RedisOperation): Promise<T> {
    return this.#deadlines.run(call).catch((error: unknown) => {
      observeFailure(this.#observer, operation, error);
      throw error;
    });
  }

  /** The account of one quota kind; a garbled field drops the cached entry, so a repair counts at once. */
  #resolve(entry: CachedAccount, kind: QuotaKind): Account {
    try {
      return resolveAccount(entry.source, kind);
    } catch (error) {
      this.#accounts.forget(entry.source.user);
      throw error;
    }
  }

  /** The cached plan of `kind` for the UTC day of `nowMs`, built once per account, kind and day. */
  #planFor(entry: CachedAccount, kind: QuotaKind, nowMs: number): KindPlan {
    const cached = entry.derived.get(kind) as KindPlan | undefined;
    if (cached !== undefined && nowMs >= cached.plan.dayStartMs && nowMs < cached.plan.dayEndMs) return cached;
    const account = this.#resolve(entry, kind);
    const plan = planDecision(account, nowMs, this.#layout);
    let budget;
    try {
      budget = resolveCreditBudget(entry.source);
    } catch (error) {
      this.#accounts.forget(entry.source.user);
      throw error;
    }
    const credits = planCredits(account, budget, this.#options.creditPrices[kind], plan.yyyymm, this.#layout);
    const compiled = compileDecidePlan(account, plan, credits);
    const cycleStartMs = dayStartMs(plan.cycle.start);
    const kindPlan: KindPlan = {
      account,
      plan,
      credits,
      compiled,
      check: chargeCheck({ ...account, yyyymm: plan.yyyymm, day: plan.day }),
      cycleStartMs,
      resetsAtMs: dayStartMs(plan.cycle.nextStart),
      matchPrefix: `${kind}|${cycleStartMs}|`,
    };
    entry.derived.set(kind, kindPlan);
    return kindPlan;
  }

  /**
   * Whether `digest` is a live key of the cached user. Parsed keys are kept with the entry; the
   * comparison runs in constant time over at least a fixed number of keys (see apiKeyMatches).
   */
  #keyMatches(entry: CachedAccount, digest: Buffer): boolean {
    let keys = entry.derived.get(API_KEYS) as StoredApiKey[] | undefined;
    if (keys === undefined) {
      keys = storedApiKeys(entry.source.userHash);
      entry.derived.set(API_KEYS, keys);
    }
    return apiKeyMatches(digest, keys, Date.now() + entry.offsetMs);
  }

  /**
   * Authenticates a caller without spending anything: `apiKey` must be one of the user's live
   * keys, read from Redis now (so a revoked key is refused at once). Throws
   * {@link AuthenticationError} for a wrong key or an unknown user alike.
   */
  async authenticate(request: { readonly user: string; readonly apiKey: string }): Promise<void> {
    const user = assertName('user', request?.user);
    const digest = presentedDigest(request.apiKey);
    await this.#bounded(() => this.#accountFromRedis(user, digest), 'authenticate');
  }

  /**
   * The user's config for a decision: cached unless `fresh`. With an API key, the caller is
   * authenticated on it; a key that does not match the cached config is checked once more
   * against the user hash read now (it may be a new key) before the caller is refused. An
   * unknown user and a wrong key cost the same read (the user hash and TIME, one round trip;
   * the org hash is read only for a matching key) and end alike: {@link AuthenticationError}.
   */
  #account(user: string, fresh: boolean, apiKey: Buffer | null): CachedAccount | Promise<CachedAccount> {
    const cached = fresh ? undefined : this.#accounts.cached(user);
    const hit = cached !== undefined && (apiKey === null || this.#keyMatches(cached, apiKey));
    this.#observer.configCache(hit);
    // A hit answers synchronously: no promise, no extra turn of the microtask queue.
    if (hit) return cached!;
    return this.#accountFromRedis(user, apiKey);
  }

  async #accountFromRedis(user: string, apiKey: Buffer | null): Promise<CachedAccount> {
    if (apiKey === null) return this.#accounts.load(user);
    const directoryKey = this.#layout.directoryKey(user);
    try {
      return await this.#accounts.load(user, (userHash, serverNowMs, key) => {
        if (apiKeyMatches(apiKey, storedApiKeys(userHash), serverNowMs)) return;
        // In the cluster layout a member's keys are read in a second round trip (its org's
        // slot); a refusal from the directory entry pays one more, so both take as long.
        if (key === directoryKey && this.#layout.name === 'cluster') throw new RefusedOnDirectory();
        throw new AuthenticationError();
      });
    } catch (error) {
      const unknown = error instanceof NotFoundError && error.code === ERROR_CODES.unknownUser;
      if (!unknown && !(error instanceof RefusedOnDirectory)) throw error;
      // The same work as for a user whose keys did not match (parse a hash's keys, compare them,
      // and the comparison of the cached entry), so timing does not tell the user is unknown.
      apiKeyMatches(apiKey, storedApiKeys(DECOY_HASH), 0);
      apiKeyMatches(apiKey, [], 0);
      if (this.#layout.name === 'cluster') await this.#client.pipeline().hgetall(directoryKey).hgetall(directoryKey).time().exec().catch(() => null);
      throw new AuthenticationError();
    }
  }

  /** Plans a decision, runs it atomically, and re-plans when config or the day moved underneath. */
  async #decide(
    user: string,
    kind: QuotaKind,
    cost: number,
    mode: 'check' | 'consume',
    requestId: string | null,
    apiKey: Buffer | null,
    unanswered?: InFlight,
    freshConfig = false,
  ): Promise<Decided> {
    const startedMs = performance.now();
    let moving = false;
    for (let attempt = 1; attempt <= this.#options.maxAttempts; attempt += 1) {
      const found = this.#account(user, freshConfig || attempt > 1, apiKey);
      const entry = found instanceof Promise ? await found : found;
      if (entry.source.userHash[MOVING_FIELD] !== undefined) {
        // The user is moving to another pool (cluster layout): decide once the move is done.
        this.#accounts.forget(user);
        moving = true;
        await sleep(MOVE_PAUSE_MS * attempt);
        continue;
      }
      moving = false;
      // What is left of the caller's time budget. `bounded` has already rejected the caller
      // once it is spent, but this function runs on: it must not charge after that.
      const budgetMs = this.#options.timeoutMs - (performance.now() - startedMs);
      if (budgetMs <= 0) throw new RedisUnavailableError(`Redis did not answer within ${this.#options.timeoutMs} ms`);
      const serverNowMs = Date.now() + entry.offsetMs;
      const injectedNowMs = this.#options.clock?.() ?? null;
      const planned = this.#planFor(entry, kind, injectedNowMs ?? serverNowMs);
      const { account, plan } = planned;
      let reservation: Reservation | null = null;
      let slot = null;
      if (mode === 'consume') {
        slot = this.#ids.next(serverNowMs, user, account.org);
        reservation = {
          id: slot.id,
          user,
          org: account.org,
          kind,
          serviceType: account.serviceType,
          yyyymm: plan.yyyymm,
          day: plan.day,
          cost,
        };
      }
      if (unanswered !== undefined) unanswered.reservation = reservation;
      const reply: DecideReply = await runDecide(this.#client, planned.compiled, {
        mode,
        cost,
        nowMs: injectedNowMs,
        // The offset errs early, so this is never later than the moment the caller gives up, on the server's clock.
        deadlineMs: Math.floor(serverNowMs + budgetMs),
        bucketKey: slot?.bucketKey ?? (planned.compiled.configKeys[0] as string),
        field: slot?.field ?? '',
        pendingValue: pendingValue(planned.check, cost),
        expireAtMs: slot === null ? null : slot.expireAtMs,
        requestId:
          requestId === null || reservation === null
            ? null
            : {
                key: this.#layout.requestIdKey(user, account.org, requestId),
                ttlMs: this.#options.requestIdTtlMs,
                signature: reservationSignature(reservation),
                match: `${planned.matchPrefix}${cost}`,
              },
      });
      if (unanswered !== undefined) unanswered.reservation = null;
      switch (reply.status) {
        case 'config_changed':
        case 'day_changed':
          this.#accounts.forget(user);
          continue;
        case 'wrong_type':
          throw new InvalidConfigError(reply.key, '', 'holds the wrong Redis type; nothing was written');
        case 'bad_counter':
          this.#accounts.forget(user);
          throw new InvalidConfigError(
            reply.key,
            reply.field,
            'not a count Tollgate could have written (negative, fractional or past 2^53 - 1); nothing was written. Repair it with `tollgate usage repair`',
          );
        case 'counter_limit':
          throw new CounterLimitError(reply.key);
        case 'expired':
          throw new RedisUnavailableError(`Redis answered after ${this.#options.timeoutMs} ms; nothing was counted`);
        case 'request_id_reused':
          throw new ConflictError(
            ERROR_CODES.requestIdReused,
            'this request id was admitted for another quota kind, cost or billing cycle; nothing was charged',
          );
        case 'replayed': {
          const original = reply.signature === '' ? (reservation as Reservation) : reservationFromSignature(reply.signature);
          await this.#awaitReplicas(startedMs, unanswered, original);
          const decision = decisionOf(account, plan, { allowed: true, used: reply.used, cost: original.cost });
          return { decision, account, reservation: original, replayed: true };
        }
        case 'decided': {
          if (reply.allowed && slot !== null) this.#ids.written(slot);
          const budgeted = planned.credits !== null && planned.credits.enabled;
          const decision = decisionOf(account, plan, {
            allowed: reply.allowed,
            used: reply.used,
            cost,
            credits: budgeted ? reply.credits : null,
          });
          if (reply.allowed && reservation !== null) await this.#awaitReplicas(startedMs, unanswered, reservation);
          return { decision, account, reservation: reply.allowed ? reservation : null, replayed: false };
        }
      }
    }
    throw new ContentionError(
      ERROR_CODES.contention,
      moving
        ? `the user is being moved to another org (${MOVING_FIELD} is set); retry, or finish the move with \`tollgate user set-org\``
        : `config or the day kept changing during ${this.#options.maxAttempts} attempts; retry`,
    );
  }
}

/** A wrong key refused on a cluster directory entry, before the decoy round trip (see #accountFromRedis). */
class RefusedOnDirectory extends Error {}

/** The digest of an API key given to consume; a key no user could hold is refused like a wrong one. */
function presentedDigest(apiKey: unknown): Buffer {
  if (typeof apiKey !== 'string' || apiKey.length === 0 || apiKey.length > MAX_API_KEY_LENGTH) throw new AuthenticationError();
  return sha256(apiKey);
}

// Pure accounting: which keys a decision reads and writes, and how a settlement moves a charge.
import { createHash } from 'node:crypto';
import { type Account, type CreditBudget, type FingerprintPart } from './config.js';
import { billingCycle, dayMember, dayStartMs, dayWindowMs, utcDay, yyyymm, type CalendarDay, type Cycle } from './cycle.js';
import { ERROR_CODES, InvalidInputError } from './errors.js';
import { RESERVATION_ID, type Owner } from './keys.js';
import { CARTO_LAYOUT, type KeyLayout } from './layout.js';
import { assertName } from './names.js';
import { quotaKindSpec, type Metric, type QuotaKind } from './quota-kinds.js';

/** Why a request was admitted or refused. */
export type DecisionReason = 'within_quota' | 'soft_limit' | 'quota_exceeded' | 'no_quota' | 'credits_exhausted';

/** Where a budgeted request stands in credits (SPEC 6). Amounts in millicredits: 1 credit = 1000. */
export interface CreditStatus {
  /** What this request costs: cost × the kind's price per unit. */
  readonly costMillicredits: number;
  /**
   * What the user may still spend after this decision: its allocation minus what it spent,
   * never more than the org balance (the org balance alone when it has no allocation).
   */
  readonly availableMillicredits: number;
}

/** The answer to "may this user spend `cost` units of `kind` now?". Over quota is a result, not an error. */
export interface Decision {
  readonly allowed: boolean;
  readonly reason: DecisionReason;
  readonly user: string;
  /** The org whose pool was judged, or `null`. */
  readonly org: string | null;
  readonly kind: QuotaKind;
  readonly serviceType: string;
  readonly quota: number;
  /** Usage this cycle after the decision: includes `cost` when a consume was admitted. */
  readonly used: number;
  readonly cost: number;
  /** `max(0, quota - used)`. */
  readonly remaining: number;
  readonly softLimit: boolean;
  /** Midnight UTC at the start of the current billing cycle. */
  readonly cycleStart: Date;
  /** Midnight UTC at the start of the next billing cycle, when usage starts again from 0. */
  readonly resetsAt: Date;
  /** Credits of the decision when the user's org has budgeting on, else `null`. */
  readonly credits: CreditStatus | null;
}

/** An admitted request awaiting settlement. Plain data: it may be stored or sent elsewhere and settled there. */
export interface Reservation {
  readonly id: string;
  readonly user: string;
  readonly org: string | null;
  readonly kind: QuotaKind;
  readonly serviceType: string;
  /** Month key and day member the charge was written to. */
  readonly yyyymm: string;
  readonly day: string;
  readonly cost: number;
}

/** How an admitted request ended: one word for all its units, or a split that adds up to its cost. */
export type Outcome = 'success' | 'empty' | 'failed' | { success?: number; empty?: number; failed?: number };

/** A settlement split with every part present. */
export interface Breakdown {
  readonly success: number;
  readonly empty: number;
  readonly failed: number;
}

/** One sorted-set increment a script applies at a day member. */
export interface Increment {
  readonly key: string;
  readonly delta: number;
}

/** One usage key and the inclusive day range of it that belongs to the current cycle. */
export interface UsageRead {
  readonly key: string;
  readonly fromDay: number;
  readonly toDay: number;
}

/** Everything the decide script needs for one account and one instant, computed in TypeScript. */
export interface DecisionPlan {
  readonly cycle: Cycle;
  readonly today: CalendarDay;
  /** `[startMs, endMs)` of today: the script refuses to act when the clock has left it. */
  readonly dayStartMs: number;
  readonly dayEndMs: number;
  readonly yyyymm: string;
  readonly day: string;
  readonly fingerprint: readonly FingerprintPart[];
  readonly reads: readonly UsageRead[];
  /** What an admission writes (see {@link admissionCharges}). */
  readonly charges: readonly Charge[];
}

/** The owners whose keys record a request: the user, and its org when it has one. */
export function recordingOwners(user: string, org: string | null): Owner[] {
  const owners: Owner[] = [{ type: 'user', name: user }];
  if (org !== null) owners.push({ type: 'org', name: org });
  return owners;
}

/** The owner whose usage a decision reads: the org for a member (usage is pooled), else the user. */
export function poolOwner(user: string, org: string | null): Owner {
  return org === null ? { type: 'user', name: user } : { type: 'org', name: org };
}

/** What the decision rule of SPEC 4 looks at. */
export interface RuleInput {
  readonly softLimit: boolean;
  readonly quota: number;
  /** Usage this cycle before the request. */
  readonly used: number;
  readonly cost: number;
}

/**
 * SPEC 4, written once: `allowed = soft_limit OR (quota > 0 AND used + cost <= quota)`. Every
 * TypeScript path that judges (fail-open, bulk checks, views) calls this; decide.lua applies the
 * same rule inside the atomic step.
 */
export function admits(rule: RuleInput): boolean {
  return rule.softLimit || (rule.quota > 0 && rule.used + rule.cost <= rule.quota);
}

/** How many of `units` the rule admits now: all under a soft limit, else what the quota has left. */
export function admissibleUnits(rule: Omit<RuleInput, 'cost'>, units: number): number {
  if (rule.softLimit) return units;
  return Math.max(0, Math.min(units, rule.quota - rule.used));
}

/**
 * Most units one call may judge or charge: 10^9 (a bulk geocode of a billion rows). Bounded so no
 * single call can push a counter toward the 2^53 a sorted-set score holds exactly.
 */
export const MAX_COST = 1_000_000_000;

/** Checks a cost: a positive integer no larger than {@link MAX_COST}. */
export function assertCost(cost: unknown): number {
  if (typeof cost !== 'number' || !Number.isSafeInteger(cost) || cost < 1 || cost > MAX_COST) {
    throw new InvalidInputError(ERROR_CODES.invalidCost, `cost must be a positive integer up to ${MAX_COST}`);
  }
  return cost;
}

/** One counter an admission raises, by `cost × perCost + fixed`. */
export interface Charge {
  readonly key: string;
  readonly perCost: number;
  readonly fixed: number;
}

/** Where an admission is recorded: who, which kind and service type, which month. */
export interface ChargeTarget {
  readonly user: string;
  readonly org: string | null;
  readonly kind: QuotaKind;
  readonly serviceType: string;
  readonly yyyymm: string;
}

/**
 * What an admission writes, as if the request will succeed: the cost into the kind's charged
 * metric and total_requests, and for isolines 1 into success_responses (CARTO counts a request
 * with any success once), for the user and, for a member, its org, in the month of admission.
 * So a request that succeeds needs no settlement at all.
 */
export function admissionCharges(target: ChargeTarget, layout: KeyLayout = CARTO_LAYOUT): Charge[] {
  const spec = quotaKindSpec(target.kind);
  return recordingOwners(target.user, target.org).flatMap((owner) => {
    const key = (metric: Metric): string => layout.usageKey(owner, target.org, target.serviceType, metric, target.yyyymm);
    const charges: Charge[] = [
      { key: key(spec.chargedMetric), perCost: 1, fixed: 0 },
      { key: key('total_requests'), perCost: 1, fixed: 0 },
    ];
    if (spec.countsSuccessfulRequests) charges.push({ key: key('success_responses'), perCost: 0, fixed: 1 });
    return charges;
  });
}

/** The increments an admission of `cost` applies (see {@link admissionCharges}). */
export function admissionIncrements(target: ChargeTarget, cost: number, layout: KeyLayout = CARTO_LAYOUT): Increment[] {
  return admissionCharges(target, layout).map((charge) => ({ key: charge.key, delta: cost * charge.perCost + charge.fixed }));
}

/** The keys an admission adds its cost to (the charged metric and total_requests of each recording owner). */
export function admissionKeys(target: ChargeTarget, layout: KeyLayout = CARTO_LAYOUT): string[] {
  return admissionCharges(target, layout)
    .filter((charge) => charge.perCost > 0)
    .map((charge) => charge.key);
}

/** Plans a decision for `account` at the UTC day of `nowMs`, with the keys of `layout`. */
export function planDecision(account: Account, nowMs: number, layout: KeyLayout = CARTO_LAYOUT): DecisionPlan {
  const spec = quotaKindSpec(account.kind);
  const day = utcDay(nowMs);
  const cycle = billingCycle(day, account.periodEndDay);
  const pool = poolOwner(account.user, account.org);
  const reads = cycle.spans.flatMap((span) =>
    spec.countedMetrics.map((metric) => ({
      key: layout.usageKey(pool, account.org, account.serviceType, metric, span.yyyymm),
      fromDay: span.fromDay,
      toDay: span.toDay,
    })),
  );
  const month = yyyymm(day.year, day.month);
  const charges = admissionCharges({ ...account, yyyymm: month }, layout);
  const window = dayWindowMs(day);
  return {
    cycle,
    today: day,
    dayStartMs: window.startMs,
    dayEndMs: window.endMs,
    yyyymm: month,
    day: dayMember(day.day),
    fingerprint: account.fingerprint,
    reads,
    charges,
  };
}

/** What the decide script needs to hold a budgeted request to its credits; see lua/decide.lua. */
export interface CreditPlan {
  readonly enabled: boolean;
  /** The member's allocation in millicredits, or `null` for no limit. */
  readonly allocationMillicredits: number | null;
  readonly millicreditsPerUnit: number;
  /** User config hash, org config hash, user ledger, org ledger (today's month). */
  readonly keys: readonly [string, string, string, string];
  readonly fingerprint: readonly FingerprintPart[];
}

/**
 * Plans the credit check of a decision for an org member; `null` outside an org. The keys are
 * planned even when budgeting is off, so the script can prove it stayed off (fingerprint).
 */
export function planCredits(
  account: Account,
  budget: CreditBudget | null,
  millicreditsPerUnit: number,
  yyyymmOfCharge: string,
  layout: KeyLayout = CARTO_LAYOUT,
): CreditPlan | null {
  if (budget === null || account.org === null) return null;
  const user: Owner = { type: 'user', name: account.user };
  const org: Owner = { type: 'org', name: account.org };
  return {
    enabled: budget.enabled,
    allocationMillicredits: budget.allocationMillicredits,
    millicreditsPerUnit,
    keys: [
      budget.userKey,
      budget.orgKey,
      layout.creditLedgerKey(user, account.org, account.serviceType, yyyymmOfCharge),
      layout.creditLedgerKey(org, account.org, account.serviceType, yyyymmOfCharge),
    ],
    fingerprint: budget.fingerprint,
  };
}

/** The credit keys a settlement refunds into (same order as {@link CreditPlan.keys}); `null` outside an org. */
export function refundKeys(reservation: Reservation, layout: KeyLayout = CARTO_LAYOUT): readonly [string, string, string, string] | null {
  const org = reservation.org;
  if (org === null) return null;
  return [
    layout.userConfigKey(reservation.user, org),
    layout.orgConfigKey(org),
    layout.creditLedgerKey({ type: 'user', name: reservation.user }, org, reservation.serviceType, reservation.yyyymm),
    layout.creditLedgerKey({ type: 'org', name: org }, org, reservation.serviceType, reservation.yyyymm),
  ];
}

/** Turns an {@link Outcome} into a full split of `cost` units, or throws {@link InvalidInputError}. */
export function breakdownOf(outcome: Outcome, cost: number): Breakdown {
  if (outcome === 'success' || outcome === 'empty' || outcome === 'failed') {
    return { success: 0, empty: 0, failed: 0, [outcome]: cost };
  }
  if (typeof outcome !== 'object' || outcome === null) {
    throw new InvalidInputError(ERROR_CODES.invalidOutcome, 'outcome must be "success", "empty", "failed" or a split');
  }
  const parts: Breakdown = { success: outcome.success ?? 0, empty: outcome.empty ?? 0, failed: outcome.failed ?? 0 };
  const valid = Object.values(parts).every((n) => Number.isSafeInteger(n) && n >= 0);
  const extra = Object.keys(outcome).filter((k) => k !== 'success' && k !== 'empty' && k !== 'failed');
  if (!valid || extra.length > 0 || parts.success + parts.empty + parts.failed !== cost) {
    throw new InvalidInputError(
      ERROR_CODES.invalidOutcome,
      `outcome split must be non-negative integers success, empty, failed adding up to the cost (${cost})`,
    );
  }
  return parts;
}

/**
 * The increments that settle a reservation, relative to what the admission wrote: empty units
 * move from the charged metric to `empty_responses` (still counted), failed units move to
 * `failed_responses` (refunded), and for isolines the 1 the admission put in
 * `success_responses` is taken back when no unit succeeded. All success: nothing to write.
 */
export function settlementIncrements(
  reservation: ChargeTarget & { readonly cost: number },
  breakdown: Breakdown,
  layout: KeyLayout = CARTO_LAYOUT,
): Increment[] {
  const spec = quotaKindSpec(reservation.kind);
  const moves: Array<[Metric, number]> = [
    [spec.chargedMetric, -(breakdown.empty + breakdown.failed)],
    ['empty_responses', breakdown.empty],
    ['failed_responses', breakdown.failed],
  ];
  if (spec.countsSuccessfulRequests && breakdown.success === 0) moves.push(['success_responses', -1]);
  return recordingOwners(reservation.user, reservation.org).flatMap((owner) =>
    moves
      .filter(([, delta]) => delta !== 0)
      .map(([metric, delta]) => ({ key: layout.usageKey(owner, reservation.org, reservation.serviceType, metric, reservation.yyyymm), delta })),
  );
}

/**
 * A short digest of where a reservation charged (user, org, kind, service type, month, day),
 * stored in its pending value so a settlement proves it names the same charge. Computed once
 * per cached plan on the admission side.
 */
export function chargeCheck(target: ChargeTarget & { readonly day: string }): string {
  const canonical = JSON.stringify([target.user, target.org, target.kind, target.serviceType, target.yyyymm, target.day]);
  return createHash('sha1').update(canonical).digest('base64url').slice(0, 10);
}

/** The value a pending reservation holds in its bucket: `p<cost>:<check>`. */
export function pendingValue(check: string, cost: number): string {
  return `p${cost}:${check}`;
}

/** A canonical string of a reservation, stored with a request id so a replay returns the same reservation. */
export function reservationSignature(reservation: Reservation): string {
  const { id, user, org, kind, serviceType, yyyymm: month, day, cost } = reservation;
  return JSON.stringify([id, user, org, kind, serviceType, month, day, cost]);
}

/** Builds the decision object from a plan and what the script measured. */
export function decisionOf(
  account: Account,
  plan: DecisionPlan,
  result: { allowed: boolean; used: number; cost: number; credits?: (CreditStatus & { denied: boolean }) | null },
): Decision {
  const { quota, softLimit } = account;
  const credits = result.credits ?? null;
  let reason: DecisionReason;
  // Credits are judged only after the quota admitted, so a credit denial names the real blocker.
  if (credits !== null && credits.denied) reason = 'credits_exhausted';
  else if (softLimit) reason = 'soft_limit';
  else if (quota === 0) reason = 'no_quota';
  else reason = result.allowed ? 'within_quota' : 'quota_exceeded';
  return {
    allowed: result.allowed,
    reason,
    user: account.user,
    org: account.org,
    kind: account.kind,
    serviceType: account.serviceType,
    quota,
    used: result.used,
    cost: result.cost,
    remaining: Math.max(0, quota - result.used),
    softLimit,
    cycleStart: new Date(dayStartMs(plan.cycle.start)),
    resetsAt: new Date(dayStartMs(plan.cycle.nextStart)),
    credits: credits === null ? null : { costMillicredits: credits.costMillicredits, availableMillicredits: credits.availableMillicredits },
  };
}

const YYYYMM = /^\d{4}(0[1-9]|1[0-2])$/;
const DAY = /^(0[1-9]|[12]\d|3[01])$/;
const SERVICE_TYPE = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Checks a reservation that came back from a caller (possibly through a queue or another
 * process) before any key is built from it; throws {@link InvalidInputError}.
 */
export function assertReservation(value: unknown): Reservation {
  const bad = (why: string): never => {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, `invalid reservation: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const r = value as Record<string, unknown>;
  if (typeof r.id !== 'string' || !RESERVATION_ID.test(r.id)) bad('id');
  assertName('user', r.user);
  if (r.org !== null) assertName('org', r.org);
  quotaKindSpec(r.kind);
  if (typeof r.serviceType !== 'string' || !SERVICE_TYPE.test(r.serviceType)) bad('serviceType');
  if (typeof r.yyyymm !== 'string' || !YYYYMM.test(r.yyyymm)) bad('yyyymm');
  if (typeof r.day !== 'string' || !DAY.test(r.day)) bad('day');
  assertCost(r.cost);
  return Object.freeze({
    id: r.id as string,
    user: r.user as string,
    org: r.org as string | null,
    kind: r.kind as QuotaKind,
    serviceType: r.serviceType as string,
    yyyymm: r.yyyymm as string,
    day: r.day as string,
    cost: r.cost as number,
  });
}

/** The reservation a stored signature describes (the inverse of {@link reservationSignature}). */
export function reservationFromSignature(signature: string): Reservation {
  let parts: unknown;
  try {
    parts = JSON.parse(signature);
  } catch {
    parts = null;
  }
  if (!Array.isArray(parts) || parts.length !== 8) {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, 'invalid reservation: malformed signature');
  }
  const [id, user, org, kind, serviceType, month, day, cost] = parts as unknown[];
  return assertReservation({ id, user, org, kind, serviceType, yyyymm: month, day, cost });
}

// The hooks through which the engine, the guard and the journal report what they do (metrics, logs); pure, no dependency.
import type { Decision, DecisionReason, Outcome, Reservation } from './accounting.js';
import { RedisUnavailableError } from './errors.js';
import type { QuotaKind } from './quota-kinds.js';

/**
 * The outcome of a decision as metrics and logs name it: `allowed` within the quota, or
 * admitted past it by a soft limit, or refused for one of the three reasons.
 */
export type DecisionResult = 'allowed' | 'soft_limit' | 'quota_exceeded' | 'no_quota' | 'credits_exhausted';

/** Every {@link DecisionResult}, in the order docs list them. */
export const DECISION_RESULTS: readonly DecisionResult[] = Object.freeze([
  'allowed',
  'soft_limit',
  'quota_exceeded',
  'no_quota',
  'credits_exhausted',
]);

/** A decision's reason as a {@link DecisionResult}. */
export function decisionResult(reason: DecisionReason): DecisionResult {
  return reason === 'within_quota' ? 'allowed' : reason;
}

/** A decision made through Redis. */
export interface DecisionEvent {
  readonly mode: 'check' | 'consume';
  readonly kind: QuotaKind;
  readonly serviceType: string;
  readonly result: DecisionResult;
  /** Wall time of the whole call, config read and retries included. */
  readonly seconds: number;
  /** The caller. Metrics never use it as a label; logs show it only when allowed to. */
  readonly user: string;
}

/** How a settlement went: `settled` applied it, `already_settled` found it applied, `journaled` kept it for later. */
export type SettleStatus = 'settled' | 'already_settled' | 'journaled' | 'rejected';

/** The outcome word of a settlement; a split is `split`. */
export type SettleOutcome = 'success' | 'empty' | 'failed' | 'split';

/** One settlement. */
export interface SettleEvent {
  readonly kind: QuotaKind;
  readonly outcome: SettleOutcome;
  readonly status: SettleStatus;
}

/** Units charged (admitted) or refunded (settled failed). */
export interface UnitsEvent {
  readonly kind: QuotaKind;
  readonly serviceType: string;
  readonly units: number;
}

/** Which call Redis failed: the guard's key check, an engine method, the journal's write-back, or the connection itself. */
export type RedisOperation = 'authenticate' | 'check' | 'consume' | 'settle' | 'quota' | 'usage' | 'journal' | 'connection';

/** Redis could not serve a call: no answer in time (`timeout`), or not reachable (`unavailable`). */
export interface RedisErrorEvent {
  readonly operation: RedisOperation;
  readonly reason: 'timeout' | 'unavailable';
  /** The error's message (never a key; a URL's password is redacted by the logger). */
  readonly message: string;
}

/** Counters of one guard's fail-open journal (see `JournalStats` in src/http/journal.ts). */
export interface JournalFigures {
  readonly size: number;
  readonly maxEntries: number;
  readonly written: number;
  readonly dropped: number;
  readonly lost: number;
}

/**
 * What Tollgate reports while it works. Every method is called on the request path, so an
 * implementation must be cheap and must not throw. {@link NOOP_OBSERVER} ignores everything;
 * `createMetrics()` counts with prom-client and `loggingObserver()` logs state changes.
 */
export interface TollgateObserver {
  /** A check or consume answered by Redis. */
  decision(event: DecisionEvent): void;
  /** Units an admission charged. */
  charged(event: UnitsEvent): void;
  /** Units a settlement refunded (its failed part). */
  refunded(event: UnitsEvent): void;
  /** A settlement and how it went. */
  settled(event: SettleEvent): void;
  /** A call that Redis could not serve. */
  redisError(event: RedisErrorEvent): void;
  /** Redis answered again (a connection became ready, or a call succeeded). Called often: keep it cheap. */
  redisUp(): void;
  /** A config lookup: `true` when the cached snapshot served it. */
  configCache(hit: boolean): void;
  /** A guard admitted without Redis (`true`), or decided through Redis again (`false`). Called per request. */
  failOpen(kind: QuotaKind, serving: boolean): void;
  /** A guard's journal, read when metrics are collected; called once per guard at construction. */
  journal(kind: QuotaKind, read: () => JournalFigures): void;
}

const ignore = (): void => undefined;

/** An observer that does nothing: the default. */
export const NOOP_OBSERVER: TollgateObserver = Object.freeze({
  decision: ignore,
  charged: ignore,
  refunded: ignore,
  settled: ignore,
  redisError: ignore,
  redisUp: ignore,
  configCache: ignore,
  failOpen: ignore,
  journal: ignore,
});

/** One observer that forwards every call to each of `observers`, in order. */
export function combineObservers(...observers: TollgateObserver[]): TollgateObserver {
  if (observers.length === 0) return NOOP_OBSERVER;
  return observers.reduceRight((rest, first) => pair(first, rest));
}

/**
 * Two observers as one. Each method calls both directly: these run on every request, and
 * a loop over an array of observers made a polymorphic call site that measured ~30x slower.
 */
function pair(a: TollgateObserver, b: TollgateObserver): TollgateObserver {
  return {
    decision: (event) => { a.decision(event); b.decision(event); },
    charged: (event) => { a.charged(event); b.charged(event); },
    refunded: (event) => { a.refunded(event); b.refunded(event); },
    settled: (event) => { a.settled(event); b.settled(event); },
    redisError: (event) => { a.redisError(event); b.redisError(event); },
    redisUp: () => { a.redisUp(); b.redisUp(); },
    configCache: (hit) => { a.configCache(hit); b.configCache(hit); },
    failOpen: (kind, serving) => { a.failOpen(kind, serving); b.failOpen(kind, serving); },
    journal: (kind, read) => { a.journal(kind, read); b.journal(kind, read); },
  };
}

/**
 * The part of a logger Tollgate writes to: a pino logger fits, as does anything with these
 * four methods taking a fields object then a message.
 */
export interface TollgateLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * True when a {@link RedisUnavailableError} says Redis did not answer in time (the client's
 * `timeoutMs`, or a script that ran past the caller's deadline), rather than "not reachable".
 */
export function isTimeout(error: unknown): boolean {
  return error instanceof RedisUnavailableError && /did not answer within|answered after/.test(error.message);
}

/**
 * Reports a decision answered through Redis, and the units it charged: a consume that was
 * admitted and is not the replay of an earlier one (a replay charged nothing).
 */
export function observeDecision(
  observer: TollgateObserver,
  mode: 'check' | 'consume',
  decision: Decision & { readonly replayed?: boolean },
  startedMs: number,
): void {
  const { kind, serviceType } = decision;
  observer.decision({ mode, kind, serviceType, result: decisionResult(decision.reason), seconds: (performance.now() - startedMs) / 1000, user: decision.user });
  if (mode === 'consume' && decision.allowed && decision.replayed !== true) observer.charged({ kind, serviceType, units: decision.cost });
}

/** Reports a call Redis could not serve; any other error is the caller's or the config's, not Redis's. */
export function observeFailure(observer: TollgateObserver, operation: RedisOperation, error: unknown): void {
  if (!(error instanceof RedisUnavailableError)) return;
  observer.redisError({ operation, reason: isTimeout(error) ? 'timeout' : 'unavailable', message: error.message });
}

/** The outcome word metrics use: a split is `split`, whatever its parts. */
function outcomeWord(outcome: Outcome): 'success' | 'empty' | 'failed' | 'split' {
  return typeof outcome === 'string' ? outcome : 'split';
}

/** Reports a settlement, and the units it refunded when it applied now (`failedUnits`, the failed part). */
export function observeSettle(
  observer: TollgateObserver,
  reservation: Reservation,
  outcome: Outcome,
  status: SettleStatus,
  failedUnits = 0,
): void {
  observer.settled({ kind: reservation.kind, outcome: outcomeWord(outcome), status });
  if (status === 'settled' && failedUnits > 0) {
    observer.refunded({ kind: reservation.kind, serviceType: reservation.serviceType, units: failedUnits });
  }
}

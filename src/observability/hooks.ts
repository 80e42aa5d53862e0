// One-line helpers the engine, the guard and the journal call to report to their observer, so each call site stays one line.
import type { Decision, Outcome, Reservation } from '../core/accounting.js';
import { RedisUnavailableError } from '../core/errors.js';
import { decisionResult, type RedisOperation, type SettleStatus, type TollgateObserver } from '../core/observer.js';
import { isTimeout } from '../redis/connection.js';

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

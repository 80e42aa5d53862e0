// The public surface of the tollgate package: re-exports only.
export {
  Tollgate,
  type Admission,
  type BulkCheck,
  type CheckRequest,
  type ConsumeRequest,
  type QuotaInfo,
  type SettleResult,
  type TollgateOptions,
  type UsageOwner,
  type UsageSummary,
} from './tollgate.js';
export type { Decision, DecisionReason, Outcome, Reservation } from './core/accounting.js';
export { QUOTA_KINDS, METRICS, isQuotaKind, type Metric, type QuotaKind } from './core/quota-kinds.js';
export { billingCycle, type CalendarDay, type Cycle, type CycleSpan } from './core/cycle.js';
export { orgConfigKey, userConfigKey, usageKey, type Owner, type OwnerType } from './core/keys.js';
export { MAX_NAME_LENGTH } from './core/names.js';
export {
  ERROR_CODES,
  ContentionError,
  InvalidConfigError,
  InvalidInputError,
  NotFoundError,
  RedisUnavailableError,
  ReservationError,
  TollgateError,
  UnexpectedReplyError,
  type TollgateErrorCode,
} from './core/errors.js';

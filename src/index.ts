// The public surface of the tollgate package: re-exports only.
export {
  Tollgate,
  type Admission,
  type AdmittedAdmission,
  type DeniedAdmission,
  type BulkCheck,
  type CheckRequest,
  type ConsumeRequest,
  type QuotaInfo,
  type SettleResult,
  type TollgateOptions,
  type UsageOwner,
  type UsageSummary,
} from './tollgate.js';
export type { CreditStatus, Decision, DecisionReason, Outcome, Reservation } from './core/accounting.js';
export { MAX_COST } from './core/accounting.js';
export { DEFAULT_CREDIT_PRICES } from './tollgate.js';
export { createAdminRouter, type AdminChange, type AdminRouterOptions } from './admin/router.js';
export { AdminOperations, apiKeyDigest, type AdminOperationsOptions, type AdminTarget } from './admin/operations.js';
export { planReport, reportRows, writeReport, type ReportFormat, type ReportPlan, type ReportRow, type ReportTarget } from './admin/reports.js';
export { TIME_FRAMES, type TimeFrame } from './admin/inputs.js';
export { QUOTA_KINDS, METRICS, isQuotaKind, type Metric, type QuotaKind } from './core/quota-kinds.js';
export { billingCycle, type CalendarDay, type Cycle, type CycleSpan } from './core/cycle.js';
export { orgConfigKey, userConfigKey, usageKey, type Owner, type OwnerType } from './core/keys.js';
export { MAX_NAME_LENGTH } from './core/names.js';
export { API_KEY_SHA256_FIELD, MAP_KEY_FIELD } from './core/config.js';
export {
  ERROR_CODES,
  AuthenticationError,
  ConflictError,
  CounterLimitError,
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
export {
  quotaGuard,
  apiKeyAuth,
  markEmpty,
  markOutcome,
  tollgateLocals,
  connectForFailOpen,
  FAIL_OPEN_CLIENT_OPTIONS,
  HTTP_ERROR_CODES,
  HttpProblem,
  QUOTA_EXCEEDED_DETAIL,
  badRequest,
  type ApiKeyAuthOptions,
  type CostFunction,
  type HttpErrorCode,
  type Identity,
  type IdentifyFunction,
  type JournalStats,
  type ProblemBody,
  type QuotaGuard,
  type QuotaGuardOptions,
  type TollgateLocals,
} from './http/index.js';

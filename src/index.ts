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
  type UsageRequest,
  type QuotaRequest,
  type UsageSummary,
} from './tollgate.js';
export type { CreditStatus, Decision, DecisionReason, Outcome, Reservation } from './core/accounting.js';
export { MAX_COST } from './core/accounting.js';
export { DEFAULT_CREDIT_PRICES } from './tollgate.js';
export {
  FailOpenTollgate,
  type FailOpenAdmission,
  type FailOpenOptions,
  type FailOpenSettleResult,
  type ResolvedFailOpenOptions,
} from './fail-open/fail-open-tollgate.js';
export { createAdminRouter, type AdminChange, type AdminRouterOptions } from './admin/router.js';
export {
  AdminOperations,
  apiKeyDigest,
  type AdminOperationsOptions,
  type AdminTarget,
  type CreatedApiKey,
  type DashboardView,
  type MemberUsage,
  type OrgCredits,
  type OrgView,
  type QuotaBlock,
  type UserCredits,
  type UserView,
  type Warnings,
  type Changed,
  type ApiKeyListing,
  type NamePage,
  type Deleted,
  type UsageAdjustment,
  type UsageRepair,
} from './admin/operations.js';
export type { GarbledScore } from './redis/usage-repair.js';
export {
  planReport,
  reportRows,
  writeReport,
  type ReportFormat,
  type ReportPlan,
  type ReportRequest,
  type ReportRow,
  type ReportTarget,
  type ReportMetric,
  type ReportRowsOptions,
} from './admin/reports.js';
export { adminPaths, ADMIN_SECURITY_SCHEMES } from './admin/openapi.js';
export { dashboardPaths } from './admin/dashboard/openapi.js';
export { body, examplesIn, jsonResponse, problemResponse, problemSchema, type ExampleBody } from './http/openapi-common.js';
export {
  NOOP_OBSERVER,
  DECISION_RESULTS,
  combineObservers,
  type DecisionEvent,
  type DecisionResult,
  type JournalFigures,
  type RedisErrorEvent,
  type RedisOperation,
  type SettleEvent,
  type SettleOutcome,
  type SettleStatus,
  type TollgateLogger,
  type TollgateObserver,
  type UnitsEvent,
} from './core/observer.js';
export { createMetrics, type MetricsOptions, type TollgateMetrics } from './observability/metrics.js';
export {
  REDACTED_PATHS,
  SILENT_LOGGER,
  createLogger,
  loggingObserver,
  scrubSecrets,
  type LoggerSettings,
  type LoggingObserverOptions,
} from './observability/logging.js';
export { TIME_FRAMES, type DayFrame, type TimeFrame } from './admin/inputs.js';
export { QUOTA_KINDS, METRICS, isQuotaKind, quotaKindSpec, type Metric, type QuotaKind, type QuotaKindSpec } from './core/quota-kinds.js';
export type { RedisClient } from './redis/connection.js';
export {
  KEY_LAYOUT_ENV,
  REDIS_ENV,
  describeTarget,
  keyLayoutFromEnv,
  redactUrl,
  redisTargetFromEnv,
  type HostPort,
  type RedisTarget,
} from './core/redis-target.js';
export { closeRedis, openRedis, type OpenRedisOptions } from './redis/topology.js';
export { billingCycle, type CalendarDay, type Cycle, type CycleSpan } from './core/cycle.js';
export { orgConfigKey, userConfigKey, usageKey, type Owner, type OwnerType, type ParsedUsageKey } from './core/keys.js';
export { CARTO_LAYOUT, CLUSTER_LAYOUT, KEY_LAYOUT_NAMES, keyLayout, type KeyLayout, type KeyLayoutName, type ParsedLayoutUsageKey } from './core/layout.js';
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
  JournalFullError,
  NotFoundError,
  RedisUnavailableError,
  ReservationError,
  TollgateError,
  UnexpectedReplyError,
  type TollgateErrorCode,
} from './core/errors.js';
export * from './http/index.js';

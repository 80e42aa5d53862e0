// The HTTP surface of Tollgate: the quota guard middleware, API key authentication, problem bodies.
// Everything here is public: src/index.ts re-exports this module whole.
export {
  quotaGuard,
  markEmpty,
  markOutcome,
  tollgateLocals,
  type CostFunction,
  type QuotaGuard,
  type QuotaGuardOptions,
  type ResolvedQuotaGuardOptions,
  type TollgateLocals,
} from './guard.js';
export { apiKeyAuth, type ApiKeyAuthOptions } from './api-key-auth.js';
export { type Identity, type IdentifyFunction } from './identity.js';
export {
  HTTP_ERROR_CODES,
  HttpProblem,
  PROBLEM_CONTENT_TYPE,
  PROBLEM_TYPE_PREFIX,
  QUOTA_EXCEEDED_DETAIL,
  badRequest,
  problemOf,
  sendProblem,
  type HttpErrorCode,
  type ProblemBody,
} from './problems.js';
export { type FlushResult, type JournalStats } from '../fail-open/journal.js';
export { FAIL_OPEN_CLIENT_OPTIONS, connectForFailOpen } from '../redis/fail-open-support.js';

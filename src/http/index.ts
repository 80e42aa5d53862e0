// The HTTP surface of Tollgate: the quota guard middleware, API key authentication, problem bodies.
export {
  quotaGuard,
  markEmpty,
  markOutcome,
  outcomeOf,
  tollgateLocals,
  type CostFunction,
  type QuotaGuard,
  type QuotaGuardOptions,
  type TollgateLocals,
} from './guard.js';
export { apiKeyAuth, type ApiKeyAuthOptions } from './api-key-auth.js';
export { pathUser, type Identity, type IdentifyFunction } from './identity.js';
export { API_KEY_SHA256_FIELD, MAP_KEY_FIELD, presentedKey } from './api-key.js';
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
export { rateLimitHeaderValues, type QuotaView } from './rate-limit-headers.js';
export { usageIncrements, type FlushResult, type JournalStats } from './journal.js';
export { FAIL_OPEN_CLIENT_OPTIONS, connectForFailOpen, supportsFailOpen } from '../redis/fail-open-support.js';

// RFC 9457 problem+json bodies and the stable error codes the HTTP layer answers with.
import type { Response } from 'express';
import {
  ContentionError,
  ERROR_CODES,
  InvalidConfigError,
  InvalidInputError,
  JournalFullError,
  NotFoundError,
  RedisUnavailableError,
  type TollgateError,
  type TollgateErrorCode,
} from '../core/errors.js';

/**
 * Stable codes of the HTTP layer, sent as the `code` member of every problem body.
 * Listed in docs/http.md; a code never changes meaning once released.
 */
export const HTTP_ERROR_CODES = {
  /** Missing, unknown or wrong API key, or a key of another user (401); a missing admin token. */
  unauthorized: ERROR_CODES.unauthorized,
  /** The admin API was given a token, and it is not the right one (403). */
  forbidden: 'ERR_TOLLGATE_FORBIDDEN',
  /** The request would take the quota past its limit (429). */
  quotaExceeded: 'ERR_TOLLGATE_QUOTA_EXCEEDED',
  /** The org's credit budget does not cover the request; an admin must act (403). */
  creditsExhausted: 'ERR_TOLLGATE_CREDITS_EXHAUSTED',
  /** The client's own input is invalid; nothing was counted (400). */
  badRequest: 'ERR_TOLLGATE_BAD_REQUEST',
  /** Fail-open could not admit: its local journal is full (503). */
  journalFull: ERROR_CODES.journalFull,
  /** Redis is unreachable or too slow and the service fails closed (503). Same code as the client's error. */
  redisUnavailable: ERROR_CODES.redisUnavailable,
  /** Config or the day kept changing under the decision; retry (503). */
  contention: ERROR_CODES.contention,
  /** A config hash holds a value Tollgate cannot read; an operator must fix it (500). */
  invalidConfig: ERROR_CODES.invalidConfig,
  /** No such endpoint (404). */
  notFound: 'ERR_TOLLGATE_NOT_FOUND',
  /** A method the guard does not meter, such as HEAD on a guarded GET (405); nothing counted. */
  methodNotAllowed: 'ERR_TOLLGATE_METHOD_NOT_ALLOWED',
  /** Anything else that went wrong on the server (500). */
  internal: 'ERR_TOLLGATE_INTERNAL',
} as const;

/** A code of {@link HTTP_ERROR_CODES}. */
export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[keyof typeof HTTP_ERROR_CODES];

/** The media type of RFC 9457 problem details. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Prefix of every problem `type` URI: a URN, so it names the problem without promising a page. */
export const PROBLEM_TYPE_PREFIX = 'urn:tollgate:problem:';

/** An RFC 9457 problem details object with Tollgate's extension members. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  /** An HTTP-layer code, or the engine's code of the error behind the problem. */
  readonly code: HttpErrorCode | TollgateErrorCode;
  readonly [extension: string]: unknown;
}

/**
 * A problem to answer with. Thrown from a cost function (or any middleware of ours) it
 * ends the request with this status and body before anything is counted.
 */
export class HttpProblem extends Error {
  /** The body sent, `status` included. */
  readonly body: ProblemBody;
  /** Extra response headers (`Retry-After`, `WWW-Authenticate`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(body: ProblemBody, headers: Record<string, string> = {}, options?: { cause?: unknown }) {
    super(`${body.status} ${body.title}: ${body.detail}`, options);
    this.name = 'HttpProblem';
    this.body = Object.freeze({ ...body });
    this.headers = Object.freeze({ ...headers });
  }

  /** The HTTP status code. */
  get status(): number {
    return this.body.status;
  }
}

/**
 * A 400 for the client's own input: `detail` says what to fix, `slug` names the problem
 * type (`urn:tollgate:problem:<slug>`). Never echo a secret or the raw input back in `detail`.
 */
export function badRequest(detail: string, slug = 'bad-request', extensions: Record<string, unknown> = {}): HttpProblem {
  // Extensions follow the standard members and can never replace them.
  const standard = { type: `${PROBLEM_TYPE_PREFIX}${slug}`, title: 'Bad request', status: 400, detail, code: HTTP_ERROR_CODES.badRequest };
  return new HttpProblem({ ...standard, ...extensions, ...standard });
}

/**
 * A 405 for `HEAD` on a metered route: answering it would run the paid handler for free (a HEAD
 * response has no body to settle), charging it would bill a request that returns nothing.
 */
export function headNotMetered(): HttpProblem {
  return new HttpProblem(
    {
      type: `${PROBLEM_TYPE_PREFIX}method-not-allowed`,
      title: 'Method not allowed',
      status: 405,
      detail: 'HEAD is not served on metered endpoints; use GET',
      code: HTTP_ERROR_CODES.methodNotAllowed,
    },
    { Allow: 'GET' },
  );
}

/** A 401; `missing` tells the caller it sent no key at all, else the key simply does not fit. */
export function unauthorized(missing: boolean): HttpProblem {
  return new HttpProblem(
    {
      type: `${PROBLEM_TYPE_PREFIX}unauthorized`,
      title: 'Unauthorized',
      status: 401,
      // One detail for unknown user, wrong key and another user's key: no account enumeration.
      detail: missing
        ? 'An API key is required: pass it as the api_key query parameter or an Authorization: Bearer header'
        : 'The API key is not valid for this user',
      code: HTTP_ERROR_CODES.unauthorized,
    },
    { 'WWW-Authenticate': missing ? 'Bearer' : 'Bearer error="invalid_token"' },
  );
}

/** A 503 while Redis cannot be reached; `retryAfterSeconds` goes into `Retry-After`. */
export function unavailable(code: HttpErrorCode, detail: string, retryAfterSeconds: number, cause?: unknown): HttpProblem {
  return new HttpProblem(
    {
      type: `${PROBLEM_TYPE_PREFIX}${code === HTTP_ERROR_CODES.journalFull ? 'journal-full' : 'service-unavailable'}`,
      title: 'Service unavailable',
      status: 503,
      detail,
      code,
    },
    { 'Retry-After': String(retryAfterSeconds) },
    { cause },
  );
}

/** A 500 that says only what a client may know; the cause stays in the server's log. */
export function internalError(code: HttpErrorCode, detail: string, cause?: unknown): HttpProblem {
  return new HttpProblem(
    { type: `${PROBLEM_TYPE_PREFIX}internal`, title: 'Internal server error', status: 500, detail, code },
    {},
    { cause },
  );
}

/** Sends a problem as `application/problem+json` with its headers. */
export function sendProblem(res: Response, problem: HttpProblem): void {
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem.body));
}

/** The message CARTO users know for an exhausted quota (SPEC section 4). */
export const QUOTA_EXCEEDED_DETAIL = 'You have reached the limit of your quota';

/** What a 429 reports about the refused decision. */
export interface QuotaExceededFacts {
  /** The quota kind (`geocoding`, `isolines`, `routing`). */
  readonly service: string;
  readonly serviceType: string;
  readonly quota: number;
  /** Usage this cycle; the refused cost is not in it. */
  readonly used: number;
  /** Units the refused request asked for. */
  readonly cost: number;
  readonly resetsAt: Date;
  /** Seconds until `resetsAt`, for `Retry-After`. */
  readonly retryAfterSeconds: number;
}

/** The 429 of a refused admission, with `Retry-After` until the next billing cycle. */
export function quotaExceeded(facts: QuotaExceededFacts): HttpProblem {
  return new HttpProblem(
    {
      type: `${PROBLEM_TYPE_PREFIX}quota-exceeded`,
      title: 'Quota exceeded',
      status: 429,
      detail: QUOTA_EXCEEDED_DETAIL,
      code: HTTP_ERROR_CODES.quotaExceeded,
      service: facts.service,
      serviceType: facts.serviceType,
      quota: facts.quota,
      used: facts.used,
      cost: facts.cost,
      resetsAt: facts.resetsAt.toISOString(),
    },
    { 'Retry-After': String(facts.retryAfterSeconds) },
  );
}

/** What a 403 reports about a request its credit budget does not cover (SPEC 6). */
export interface CreditsExhaustedFacts {
  readonly service: string;
  readonly serviceType: string;
  /** Units the refused request asked for. */
  readonly cost: number;
  /** What they would cost, and what the user may still spend, in credits. */
  readonly costCredits: number;
  readonly availableCredits: number;
}

/**
 * The 403 of a request its credit budget does not cover. Not a 429: budgets do not reset
 * with the billing cycle, an admin has to allocate or add credits, so there is no
 * `Retry-After` to give.
 */
export function creditsExhausted(facts: CreditsExhaustedFacts): HttpProblem {
  return new HttpProblem({
    type: `${PROBLEM_TYPE_PREFIX}credits-exhausted`,
    title: 'Credits exhausted',
    status: 403,
    detail: 'You have reached the limit of your credits; an administrator must allocate more',
    code: HTTP_ERROR_CODES.creditsExhausted,
    service: facts.service,
    serviceType: facts.serviceType,
    cost: facts.cost,
    costCredits: facts.costCredits,
    availableCredits: facts.availableCredits,
  });
}

/** Seconds a client should wait before retrying while Redis is away. */
export const RETRY_AFTER_UNAVAILABLE_SECONDS = 5;

/** The 503 of an unreachable Redis. */
export function redisDown(cause?: unknown): HttpProblem {
  return unavailable(
    HTTP_ERROR_CODES.redisUnavailable,
    'The quota service is temporarily unavailable; retry later',
    RETRY_AFTER_UNAVAILABLE_SECONDS,
    cause,
  );
}

/**
 * The answer to a Tollgate failure: 503 for Redis trouble and contention, 401 for a user
 * Tollgate does not know, 500 for broken config (the details stay in the server log).
 */
export function problemOf(error: TollgateError): HttpProblem {
  if (error instanceof JournalFullError) {
    return unavailable(HTTP_ERROR_CODES.journalFull, 'The quota service is unavailable and its local journal is full; retry later', RETRY_AFTER_UNAVAILABLE_SECONDS, error);
  }
  if (error instanceof RedisUnavailableError) return redisDown(error);
  if (error instanceof ContentionError) {
    return unavailable(HTTP_ERROR_CODES.contention, 'The account changed during the decision; retry', 1, error);
  }
  if (error instanceof NotFoundError && error.code === ERROR_CODES.unknownUser) return unauthorized(false);
  if (error instanceof InvalidInputError && error.code === ERROR_CODES.invalidName) return unauthorized(false);
  if (error instanceof InvalidConfigError || error instanceof NotFoundError || error.code === ERROR_CODES.invalidConfig) {
    return internalError(HTTP_ERROR_CODES.invalidConfig, 'The account configuration cannot be read; the operator has been told', error);
  }
  return internalError(HTTP_ERROR_CODES.internal, 'The quota service failed', error);
}

// Typed errors with stable codes: every failure a caller can handle, listed in docs/errors.md.

/** Every stable error code Tollgate raises. Codes never change meaning once released. */
export const ERROR_CODES = {
  invalidName: 'ERR_TOLLGATE_INVALID_NAME',
  invalidCost: 'ERR_TOLLGATE_INVALID_COST',
  unknownQuotaKind: 'ERR_TOLLGATE_UNKNOWN_QUOTA_KIND',
  invalidRequestId: 'ERR_TOLLGATE_INVALID_REQUEST_ID',
  invalidOutcome: 'ERR_TOLLGATE_INVALID_OUTCOME',
  invalidArgument: 'ERR_TOLLGATE_INVALID_ARGUMENT',
  invalidOptions: 'ERR_TOLLGATE_INVALID_OPTIONS',
  invalidConfig: 'ERR_TOLLGATE_INVALID_CONFIG',
  unknownUser: 'ERR_TOLLGATE_UNKNOWN_USER',
  unknownOrg: 'ERR_TOLLGATE_UNKNOWN_ORG',
  unknownReservation: 'ERR_TOLLGATE_UNKNOWN_RESERVATION',
  contention: 'ERR_TOLLGATE_CONTENTION',
  redisUnavailable: 'ERR_TOLLGATE_REDIS_UNAVAILABLE',
  unexpectedReply: 'ERR_TOLLGATE_UNEXPECTED_REPLY',
  invalidQuota: 'ERR_TOLLGATE_INVALID_QUOTA',
  invalidCredits: 'ERR_TOLLGATE_INVALID_CREDITS',
  invalidProvider: 'ERR_TOLLGATE_INVALID_PROVIDER',
  invalidDate: 'ERR_TOLLGATE_INVALID_DATE',
  invalidTimeFrame: 'ERR_TOLLGATE_INVALID_TIME_FRAME',
  notInOrg: 'ERR_TOLLGATE_NOT_IN_ORG',
  alreadyExists: 'ERR_TOLLGATE_ALREADY_EXISTS',
  concurrentChange: 'ERR_TOLLGATE_CONCURRENT_CHANGE',
  unknownApiKey: 'ERR_TOLLGATE_UNKNOWN_API_KEY',
  hasMembers: 'ERR_TOLLGATE_HAS_MEMBERS',
  hasUsage: 'ERR_TOLLGATE_HAS_USAGE',
  adjustmentTooLarge: 'ERR_TOLLGATE_ADJUSTMENT_TOO_LARGE',
  requestIdReused: 'ERR_TOLLGATE_REQUEST_ID_REUSED',
  counterLimit: 'ERR_TOLLGATE_COUNTER_LIMIT',
  unauthorized: 'ERR_TOLLGATE_UNAUTHORIZED',
  journalFull: 'ERR_TOLLGATE_JOURNAL_FULL',
  migrationConflict: 'ERR_TOLLGATE_MIGRATION_CONFLICT',
  sourceChanged: 'ERR_TOLLGATE_SOURCE_CHANGED',
} as const;

/** A stable `ERR_TOLLGATE_*` code. */
export type TollgateErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Base class of every error Tollgate raises on purpose. */
export class TollgateError extends Error {
  /** Stable machine-readable code, one of {@link ERROR_CODES}. */
  readonly code: TollgateErrorCode;

  constructor(code: TollgateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The caller passed something that can never be valid: a bad name, cost, kind, outcome or option. */
export class InvalidInputError extends TollgateError {}

/** A config hash in Redis holds a value Tollgate cannot interpret; the request is denied, nothing is written. */
export class InvalidConfigError extends TollgateError {
  /** The Redis key holding the garbled field. */
  readonly key: string;
  /** The garbled field. */
  readonly field: string;

  constructor(key: string, field: string, reason: string) {
    super(ERROR_CODES.invalidConfig, `${key} field ${field}: ${reason}`);
    this.key = key;
    this.field = field;
  }
}

/** The named user or org has no config hash. */
export class NotFoundError extends TollgateError {}

/** An admin change contradicts the current state: creating what exists, budgeting a user outside any org. */
export class ConflictError extends TollgateError {}

/** A settlement names a reservation that does not exist (never made, or expired) or does not match. */
export class ReservationError extends TollgateError {}

/**
 * The API key given with a consume is not one of the user's live keys, or the user does not
 * exist: the two are answered alike (and in the same time), so a caller cannot tell which.
 */
export class AuthenticationError extends TollgateError {
  constructor() {
    super(ERROR_CODES.unauthorized, 'unknown user or wrong API key');
  }
}

/**
 * Charging would take a usage counter past 2^53 - 1, the largest count a sorted-set score holds
 * exactly; nothing was written. Only a soft-limited account can get there, after ~9 * 10^15 units.
 */
export class CounterLimitError extends TollgateError {
  /** The counter that would overflow. */
  readonly key: string;

  constructor(key: string) {
    super(ERROR_CODES.counterLimit, `${key}: charging would take the counter past 2^53 - 1; nothing was written`);
    this.key = key;
  }
}

/** Config or the day kept changing under a decision; the caller may retry. */
export class ContentionError extends TollgateError {}

/** Redis could not be reached or did not answer within the configured timeout. */
export class RedisUnavailableError extends TollgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.redisUnavailable, message, options);
  }
}

/** Fail-open cannot admit without Redis because its local journal is full: nothing was served unrecorded. */
export class JournalFullError extends TollgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.journalFull, message, options);
  }
}

/** Redis answered with something no version of our scripts returns: a bug, never a domain outcome. */
export class UnexpectedReplyError extends TollgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.unexpectedReply, message, options);
  }
}

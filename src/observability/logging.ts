// Structured logs with pino: the logger Tollgate writes through, secrets scrubbed, and an observer that logs state changes once.
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { DecisionEvent, RedisErrorEvent, SettleEvent, TollgateLogger, TollgateObserver } from '../core/observer.js';
import type { QuotaKind } from '../core/quota-kinds.js';

/** Options of {@link createLogger}. */
export interface LoggerSettings {
  /** pino level: `debug`, `info` (default), `warn`, `error`, `silent`. */
  readonly level?: string;
  /**
   * Human-readable lines through pino-pretty. Default: when standard error is a terminal and
   * pino-pretty (a dev dependency) is installed; JSON lines otherwise.
   */
  readonly pretty?: boolean;
  /** Where lines go. Default standard error (standard output stays the app's own). */
  readonly destination?: DestinationStream;
}

/**
 * Field paths whose values are never written, at the top level or one level down. Tollgate
 * never puts a key in a log field; this catches an app's own calls and mistakes.
 */
export const REDACTED_PATHS: readonly string[] = Object.freeze(
  ['apiKey', 'api_key', 'key', 'token', 'adminToken', 'authorization', 'password', 'map_key', 'api_key_sha256']
    .flatMap((field) => [field, `*.${field}`])
    .concat(['req.headers.authorization', 'req.headers.cookie']),
);

const SECRET_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // The password of a redis://user:password@host URL.
  [/(rediss?:\/\/[^:@/\s]*:)[^@\s]+@/gi, '$1***@'],
  // An API key in a query string.
  [/([?&](?:api_key|token)=)[^&\s'"]+/gi, '$1***'],
  // A bearer token in a copied header.
  [/(Bearer\s+)[^\s'",)]+/gi, '$1***'],
];

/** `text` with Redis URL passwords, `api_key=` values and bearer tokens replaced by `***`. */
export function scrubSecrets(text: string): string {
  let scrubbed = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) scrubbed = scrubbed.replace(pattern, replacement);
  return scrubbed;
}

/** A shallow copy of `fields` with every string value scrubbed (error messages quote URLs). */
function scrubFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) out[name] = typeof value === 'string' ? scrubSecrets(value) : value;
  return out;
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** The pino options Tollgate's loggers share: redaction, scrubbing, ISO time, level names. */
function baseOptions(level: string): LoggerOptions {
  return {
    level,
    base: { name: 'tollgate', pid: process.pid, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    formatters: {
      level: (label) => ({ level: label }),
      log: (fields) => scrubFields(fields),
    },
    hooks: {
      // Messages are scrubbed too: an error message may quote a URL with its password.
      logMethod(args, method) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? scrubSecrets(arg) : arg)) as Parameters<typeof method>);
      },
    },
  };
}

/**
 * Creates a pino logger that writes one JSON line per event (or pretty lines on a terminal),
 * with secrets redacted. Every Tollgate component logs through one of these.
 */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options = baseOptions(settings.level ?? 'info');
  if (settings.destination !== undefined) return pino(options, settings.destination);
  const pretty = settings.pretty ?? (process.stderr.isTTY === true && prettyAvailable());
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Synchronous: Tollgate logs state changes, not requests, and a line must not be lost when the process exits.
  return pino(options, pino.destination({ dest: 2, sync: true }));
}

let shared: Logger | undefined;

/** The logger used when none is given: JSON lines on standard error at level `info`, created once. */
export function defaultLogger(): Logger {
  shared ??= createLogger({ pretty: false });
  return shared;
}

/** A logger that writes nothing (tests, or hosts that log through their own observer). */
export const SILENT_LOGGER: TollgateLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});

/** Options of {@link loggingObserver}. */
export interface LoggingObserverOptions {
  /** Clock for the outage duration; tests pass their own. Default `Date.now`. */
  readonly now?: () => number;
  /** Also log every decision (`decision`, level debug): for debugging, not production volume. Default false. */
  readonly decisions?: boolean;
  /** Put the user name in decision lines. Default false: logs carry no user names unless asked. */
  readonly users?: boolean;
}

/**
 * An observer that logs what changes state, once per change: Redis going away (`redis.down`,
 * with the first failure) and coming back (`redis.up`, with how many calls failed meanwhile),
 * a guard starting and stopping to serve without Redis (`fail_open.start`, `fail_open.stop`).
 * Between two changes it only counts, so an outage under load is two lines, not one per request.
 */
export function loggingObserver(logger: TollgateLogger, options: LoggingObserverOptions = {}): TollgateObserver {
  const now = options.now ?? Date.now;
  let down: { since: number; failures: number; timeouts: number } | null = null;
  const serving = new Map<QuotaKind, number>();

  const up = (): void => {
    if (down === null) return;
    const { since, failures, timeouts } = down;
    down = null;
    logger.info(
      { event: 'redis.up', code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE', failures, timeouts, downMs: now() - since },
      `Redis answers again after ${now() - since} ms; ${failures} calls failed meanwhile`,
    );
  };
  const failure = (event: RedisErrorEvent): void => {
    if (down !== null) {
      down.failures += 1;
      if (event.reason === 'timeout') down.timeouts += 1;
      return;
    }
    down = { since: now(), failures: 1, timeouts: event.reason === 'timeout' ? 1 : 0 };
    logger.warn(
      { event: 'redis.down', code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE', operation: event.operation, reason: event.reason, error: event.message },
      `Redis unavailable (${event.reason} on ${event.operation}): ${event.message}; requests answer 503 unless fail-open serves them`,
    );
  };

  // Not frozen: a frozen object's methods measured slower to call on the request path.
  const decision = (event: DecisionEvent): void => {
    up();
    if (options.decisions !== true) return;
    const { mode, kind, serviceType, result } = event;
    logger.debug(
      { event: 'decision', mode, kind, serviceType, result, ms: Math.round(event.seconds * 1e6) / 1e3, ...(options.users === true ? { user: event.user } : {}) },
      `${mode} ${kind}: ${result}`,
    );
  };
  return {
    decision,
    charged: () => undefined,
    refunded: () => undefined,
    settled: (event: SettleEvent) => {
      if (event.status === 'settled' || event.status === 'already_settled') up();
    },
    redisError: failure,
    redisUp: up,
    configCache: () => undefined,
    failOpen(kind: QuotaKind, isServing: boolean): void {
      const admitted = serving.get(kind);
      if (isServing) {
        if (admitted === undefined) {
          logger.warn({ event: 'fail_open.start', kind }, `fail-open: ${kind} is served without Redis, journaled for write-back`);
          serving.set(kind, 1);
        } else {
          serving.set(kind, admitted + 1);
        }
        return;
      }
      if (admitted === undefined) return;
      serving.delete(kind);
      logger.info({ event: 'fail_open.stop', kind, admitted }, `fail-open: ${kind} is decided through Redis again; ${admitted} requests were admitted without it`);
    },
    journal: () => undefined,
  };
}

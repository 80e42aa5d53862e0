// The Express middleware: identify the caller, admit the cost atomically before the handler, settle when the response ends.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { MAX_COST, breakdownOf, type Decision, type Outcome, type Reservation } from '../core/accounting.js';
import { AuthenticationError, ERROR_CODES, InvalidInputError, RedisUnavailableError, TollgateError } from '../core/errors.js';
import { observeSettle, type TollgateLogger } from '../core/observer.js';
import { QUOTA_KINDS, type QuotaKind } from '../core/quota-kinds.js';
import { FailOpenTollgate } from '../fail-open/fail-open-tollgate.js';
import { LocalJournal, type FlushResult, type JournalStats } from '../fail-open/journal.js';
import { toTollgateError } from '../redis/connection.js';
import { Tollgate, type Admission } from '../tollgate.js';
import { Authenticator, type Identity, type IdentifyFunction } from './identity.js';
import {
  HTTP_ERROR_CODES,
  HttpProblem,
  internalError,
  problemOf,
  quotaExceeded,
  creditsExhausted,
  headNotMetered,
  sendProblem,
  unauthorized,
} from './problems.js';
import { POLICY_NAME, secondsUntil, setRateLimitHeaders } from './rate-limit-headers.js';

/**
 * The units a request costs, computed before anything is counted: a bulk geocode of N rows
 * costs N, an isolines request its number of ranges. Throw an {@link HttpProblem} (e.g.
 * `badRequest(...)`) to refuse the request: nothing is counted and Redis is not written.
 */
export type CostFunction = (req: Request, res: Response) => number | Promise<number>;

/**
 * What the guard and the handler share through `res.locals.tollgate`. The guard sets
 * `identity` and `decision`; the handler may set `empty: true` (a 2xx with no result) or
 * `outcome` (a split such as `{ success: 7, empty: 3 }` adding up to the cost).
 */
export interface TollgateLocals {
  identity?: Identity;
  /** The admission: quota, used, remaining, resetsAt (for a fail-open admission, as known locally). */
  decision?: Decision;
  /** True when the request was admitted by fail-open, without Redis (journaled). */
  failOpen?: boolean;
  empty?: boolean;
  outcome?: Outcome;
}

/** Options of {@link quotaGuard}. Parsed once; unknown keys are rejected. */
export interface QuotaGuardOptions {
  /** The Tollgate client that admits and settles. */
  readonly tollgate: Tollgate;
  /** The quota kind this route spends. */
  readonly kind: QuotaKind;
  /** Units of a request; default 1. */
  readonly cost?: CostFunction;
  /** An app's own authentication instead of `/u/:username` + API key. */
  readonly identify?: IdentifyFunction;
  /** Name of the policy in the RateLimit headers; default the quota kind. Letters, digits, `_.-`. */
  readonly policyName?: string;
  /** Bound on the API key lookup and on each journal write-back. Default 1000 ms. */
  readonly timeoutMs?: number;
  /**
   * Keep serving while Redis is down: callers verified recently are admitted against their
   * last known quota, and what they consume is journaled and written back later. Default false (503).
   * `true` builds a {@link FailOpenTollgate} for this guard from the options below; pass one
   * instead to share its journal with other guards or with service code calling `consume()`
   * (then the journal options below must be left out, and its owner closes it).
   * Needs a Tollgate built on a client from `connectForFailOpen` (checked at construction).
   */
  readonly failOpen?: boolean | FailOpenTollgate;
  /** Entries the local journal holds at most. Default 10 000. */
  readonly journalMaxEntries?: number;
  /** How long a verified key and a known quota may be relied on while Redis is down. Default 15 min. */
  readonly failOpenTtlMs?: number;
  /** Users whose key and quota are remembered for fail-open. Default 10 000. */
  readonly failOpenMaxUsers?: number;
  /** App instances that may fail open at once; each admits locally only its share (see `FailOpenOptions.instances`). Default 1. */
  readonly failOpenInstances?: number;
  /** How often the journal retries while it holds anything. Default 1000 ms. */
  readonly flushIntervalMs?: number;
  /** Where the guard and its journal log (never a key); a pino logger. Default the Tollgate client's `logger`. */
  readonly logger?: TollgateLogger;
}

const isFunction = (value: unknown): boolean => typeof value === 'function';

const optionsSchema = z.strictObject({
  tollgate: z.custom<Tollgate>((value) => value instanceof Tollgate, 'must be a Tollgate client'),
  kind: z.enum(QUOTA_KINDS as [QuotaKind, ...QuotaKind[]]),
  cost: z.custom<CostFunction>(isFunction, 'must be a function').optional(),
  identify: z.custom<IdentifyFunction>(isFunction, 'must be a function').optional(),
  policyName: z.string().regex(POLICY_NAME, 'letters, digits, "_", "." or "-", at most 64').optional(),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  failOpen: z.union([z.boolean(), z.custom<FailOpenTollgate>((value) => value instanceof FailOpenTollgate, 'must be a boolean or a FailOpenTollgate')]).default(false),
  journalMaxEntries: z.number().int().min(1).max(1_000_000).default(10_000),
  failOpenTtlMs: z.number().int().min(1000).max(24 * 3_600_000).default(15 * 60_000),
  failOpenMaxUsers: z.number().int().min(1).max(1_000_000).default(10_000),
  failOpenInstances: z.number().int().min(1).max(10_000).default(1),
  flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
  logger: z.custom<TollgateLogger>((value) => typeof (value as TollgateLogger | null)?.warn === 'function', 'must be a logger (pino)').optional(),
});

/** {@link QuotaGuardOptions} as parsed: defaults filled in, frozen. */
export interface ResolvedQuotaGuardOptions extends QuotaGuardOptions {
  readonly timeoutMs: number;
  readonly failOpen: boolean | FailOpenTollgate;
  readonly journalMaxEntries: number;
  readonly failOpenTtlMs: number;
  readonly failOpenMaxUsers: number;
  readonly failOpenInstances: number;
  readonly flushIntervalMs: number;
}

// The schema's output must fit the published interface: parseOptions returns one as the other.
type ParsedOptions = ResolvedQuotaGuardOptions;

/** A quota guard: an Express middleware with hooks for shutdown and health checks. */
export interface QuotaGuard extends RequestHandler {
  /** The parsed, frozen options. */
  readonly options: Readonly<ResolvedQuotaGuardOptions>;
  /** Resolves when every admitted request has ended and been settled (or journaled). */
  drain(): Promise<void>;
  /** Writes what the journal holds now; resolves with what was written and what remains. */
  flush(): Promise<FlushResult>;
  /** Journal counters: entries held, written, dropped, lost. */
  journalStats(): JournalStats;
  /** Drains, makes a last write-back attempt, stops timers. Does not close the Tollgate client. */
  close(): Promise<void>;
}

/** Refuses options that cannot work, at construction: a misconfiguration never waits for the first request. */
function parseOptions(options: QuotaGuardOptions): Readonly<ParsedOptions> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`);
    throw new InvalidInputError(ERROR_CODES.invalidOptions, `invalid quotaGuard options: ${detail.join('; ')}`);
  }
  const { failOpen, tollgate } = parsed.data;
  if (failOpen instanceof FailOpenTollgate) {
    const own = (['journalMaxEntries', 'failOpenTtlMs', 'failOpenMaxUsers', 'failOpenInstances'] as const).filter((key) => options[key] !== undefined);
    if (failOpen.tollgate !== tollgate || own.length > 0) {
      throw new InvalidInputError(
        ERROR_CODES.invalidOptions,
        `invalid quotaGuard options: a shared FailOpenTollgate must wrap this guard's tollgate and carries its own journal options (${own.join(', ') || 'tollgate'})`,
      );
    }
  }
  return Object.freeze(parsed.data);
}

/** The locals object shared with the handler, created on first use. */
export function tollgateLocals(res: Response): TollgateLocals {
  const locals = res.locals as { tollgate?: TollgateLocals };
  locals.tollgate ??= {};
  return locals.tollgate;
}

/** Tells the guard this 2xx response carries no result: it settles as `empty` (still counted). */
export function markEmpty(res: Response): void {
  tollgateLocals(res).empty = true;
}

/** Tells the guard how the request's units ended, e.g. `{ success: 7, empty: 3 }` for a bulk request. */
export function markOutcome(res: Response, outcome: Outcome): void {
  tollgateLocals(res).outcome = outcome;
}

/**
 * How a response that ended settles: any status of 400 or more is `failed` (refunded, so a
 * client's own 4xx is never charged); otherwise the handler's `outcome`, else `empty` when
 * it said so, else `success`. An `outcome` that does not add up to the cost is ignored.
 */
export function outcomeOf(res: Response, cost: number, completed: boolean): { outcome: Outcome; invalidSplit: boolean } {
  if (!completed || res.statusCode >= 400) return { outcome: 'failed', invalidSplit: false };
  const locals = tollgateLocals(res);
  if (locals.outcome !== undefined) {
    try {
      breakdownOf(locals.outcome, cost);
      return { outcome: locals.outcome, invalidSplit: false };
    } catch {
      return { outcome: locals.empty === true ? 'empty' : 'success', invalidSplit: true };
    }
  }
  return { outcome: locals.empty === true ? 'empty' : 'success', invalidSplit: false };
}

/**
 * Calls `settle` once when the response ends: `completed` false when the client went away first.
 * A response always emits `close` last (after `finish` when it completed), so one listener does.
 */
function onEnd(res: Response, settle: (completed: boolean) => void): void {
  res.on('close', () => settle(res.writableFinished));
}

/**
 * Builds the middleware for one quota kind.
 *
 * @example
 * app.get('/u/:username/api/v1/geocode', quotaGuard({ tollgate, kind: 'geocoding' }), handler);
 */
export function quotaGuard(options: QuotaGuardOptions): QuotaGuard {
  const config = parseOptions(options);
  const { tollgate } = config;
  const logger = config.logger ?? tollgate.logger;
  const observer = tollgate.observer;
  // The journals log plain sentences; they go out as one structured event.
  const log = (message: string): void => logger.warn({ event: 'journal.warning', kind: config.kind }, message);
  const policy = config.policyName ?? config.kind;
  // Fail-open lives in the library (src/fail-open/): the guard only routes decisions and settlements through it.
  const ownsFailOpen = config.failOpen === true;
  const failOpen: FailOpenTollgate | null =
    config.failOpen instanceof FailOpenTollgate
      ? config.failOpen
      : config.failOpen
        ? new FailOpenTollgate({
            tollgate,
            timeoutMs: config.timeoutMs,
            flushIntervalMs: config.flushIntervalMs,
            log,
            journalMaxEntries: config.journalMaxEntries,
            ttlMs: config.failOpenTtlMs,
            maxUsers: config.failOpenMaxUsers,
            instances: config.failOpenInstances,
          })
        : null;
  const authenticator = new Authenticator({
    tollgate,
    identify: config.identify ?? null,
    timeoutMs: config.timeoutMs,
    failOpenKeys: failOpen,
  });
  // Without fail-open, settlements that cannot reach Redis still wait in a journal of their own.
  const journal =
    failOpen === null
      ? new LocalJournal({ tollgate, maxEntries: config.journalMaxEntries, timeoutMs: config.timeoutMs, flushIntervalMs: config.flushIntervalMs, log })
      : null;
  const journalStats = (): JournalStats => (failOpen === null ? (journal as LocalJournal).stats() : failOpen.stats());
  observer.journal(config.kind, journalStats);
  const flushJournal = (): Promise<FlushResult> => (failOpen === null ? (journal as LocalJournal).flush() : failOpen.flush());
  /** Admitted requests not yet ended and settled, and who waits for them all to be. */
  let open = 0;
  let drained: Array<() => void> = [];
  const release = (): void => {
    open -= 1;
    if (open > 0) return;
    const waiting = drained;
    drained = [];
    for (const resolve of waiting) resolve();
  };
  const failed = (error: unknown): void => logger.error({ event: 'settle.failed', kind: config.kind, ...causeFields(error) }, 'settlement failed');

  /**
   * Runs `work` when the response ends and counts the request as open until then, so
   * drain() also waits for admitted requests whose handler is still running. A counter, not a
   * promise per request: most requests end with nothing to do.
   */
  const whenEnded = (res: Response, work: (completed: boolean) => Promise<void> | void): void => {
    open += 1;
    onEnd(res, (completed) => {
      let done: Promise<void> | void = undefined;
      try {
        done = work(completed);
      } catch (error) {
        failed(error);
      }
      if (done === undefined) release();
      else done.catch(failed).finally(release);
    });
  };

  const settleLater = (res: Response, reservation: Reservation): void => {
    whenEnded(res, (completed) => {
      const { outcome, invalidSplit } = outcomeOf(res, reservation.cost, completed);
      if (invalidSplit) logger.warn({ event: 'settle.invalid_split', kind: config.kind, cost: reservation.cost }, 'res.locals.tollgate.outcome does not add up to the cost; settled as a whole');
      // The admission charged a success already: only another outcome needs Redis. A fail-open
      // admission still held by the journal always completes its entry.
      if (failOpen?.holds(reservation) !== true && isPlainSuccess(outcome, reservation.cost)) return undefined;
      return settleNow(reservation, outcome);
    });
  };

  const settleNow = async (reservation: Reservation, outcome: Outcome): Promise<void> => {
    if (failOpen !== null) {
      // Through Redis, or into the fail-open journal (its own reservations, or Redis away).
      const settled = await failOpen.settle(reservation, outcome);
      if (settled.status === 'journaled' || settled.status === 'dropped') observeSettle(observer, reservation, outcome, settled.status === 'journaled' ? 'journaled' : 'rejected');
      return;
    }
    try {
      await tollgate.settle(reservation, outcome);
    } catch (error) {
      const typed = toTollgateError(error);
      if (!(typed instanceof RedisUnavailableError)) throw typed;
      const kept = (journal as LocalJournal).addSettle(reservation, outcome);
      observeSettle(observer, reservation, outcome, kept ? 'journaled' : 'rejected');
      if (!kept) logger.warn({ event: 'journal.settle_dropped', kind: config.kind, cost: reservation.cost }, 'journal full, a settlement was dropped: its units stay charged');
    }
  };

  const exceeded = (quota: number, used: number, serviceType: string, cost: number, resetsAt: Date, nowMs: number): HttpProblem =>
    quotaExceeded({ service: config.kind, serviceType, quota, used, cost, resetsAt, retryAfterSeconds: secondsUntil(resetsAt, nowMs) });

  const costProblem = (error: unknown): HttpProblem =>
    error instanceof HttpProblem ? error : internalError(HTTP_ERROR_CODES.internal, 'The cost of this request could not be computed', error);
  const checkedCost = (cost: number): number => {
    if (!Number.isSafeInteger(cost) || cost < 1 || cost > MAX_COST) {
      throw internalError(HTTP_ERROR_CODES.internal, 'The cost of this request could not be computed', new Error(`cost function returned ${String(cost)}`));
    }
    return cost;
  };
  // A number when the cost is known synchronously (no cost function, or one that returns a
  // number), so the common request does not wait an extra turn of the microtask queue.
  const costOf = (req: Request, res: Response): number | Promise<number> => {
    if (config.cost === undefined) return 1;
    let cost: number | Promise<number>;
    try {
      cost = config.cost(req, res);
    } catch (error) {
      throw costProblem(error);
    }
    if (typeof cost === 'number') return checkedCost(cost);
    return Promise.resolve(cost).then(checkedCost, (error: unknown) => {
      throw costProblem(error);
    });
  };

  const handle = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      // Express routes HEAD to GET handlers: refuse it before anything is read or counted.
      if (req.method === 'HEAD') throw headNotMetered();
      // With our own API keys, the key is checked inside the consume: one round trip for both.
      const credentials = authenticator.custom ? null : authenticator.credentials(req);
      const identity: Identity = credentials === null ? await authenticator.identifyCustom(req, res) : { user: credentials.user };
      tollgateLocals(res).identity = identity;
      let cost: number;
      try {
        const costed = costOf(req, res);
        cost = typeof costed === 'number' ? costed : await costed;
      } catch (error) {
        // Authentication comes first: a caller without a valid key learns nothing about its input.
        // Only this refusal path pays a separate key check.
        if (credentials !== null && error instanceof HttpProblem && error.status < 500) await authenticator.authenticate(req, res);
        throw error;
      }
      let admission: Admission;
      try {
        const request = { user: identity.user, kind: config.kind, cost, apiKey: credentials?.key };
        if (failOpen === null) {
          admission = await tollgate.consume(request);
        } else {
          // Through Redis, or locally while Redis is away or this process's journal is not yet
          // written back; it remembers and checks API keys itself (src/fail-open/fail-open-tollgate.ts).
          const decided = await failOpen.consume(request);
          if (decided.failOpen) tollgateLocals(res).failOpen = true;
          // Serving without Redis starts with an admission made locally and ends with one made through Redis.
          if (decided.allowed || !decided.failOpen) observer.failOpen(config.kind, decided.failOpen);
          admission = decided;
        }
      } catch (error) {
        const typed = toTollgateError(error);
        if (typed instanceof AuthenticationError) throw unauthorized(false);
        throw problemOf(typed);
      }
      if (journal !== null && journal.stats().size > 0) void journal.flush();
      const nowMs = Date.now();
      setRateLimitHeaders(res, policy, admission, nowMs);
      if (admission.reason === 'credits_exhausted' && admission.credits !== null) {
        throw creditsExhausted({
          service: config.kind,
          serviceType: admission.serviceType,
          cost,
          costCredits: admission.credits.costMillicredits / 1000,
          availableCredits: admission.credits.availableMillicredits / 1000,
        });
      }
      if (!admission.allowed || admission.reservation === null) {
        // A refused cost is not in `used`: report usage as the quota saw it.
        throw exceeded(admission.quota, admission.used, admission.serviceType, cost, admission.resetsAt, nowMs);
      }
      tollgateLocals(res).decision = admission;
      reportRefundOnFailure(res, policy, admission, cost);
      settleLater(res, admission.reservation);
      next();
    } catch (error) {
      if (!(error instanceof HttpProblem)) throw error;
      // Redis outages and a full journal are logged once per state change (the observer), not once per 503.
      if (error.status >= 500 && error.cause !== undefined && !QUIET_CODES.has(error.body.code)) {
        logger.error({ event: 'request.failed', code: error.body.code, kind: config.kind, status: error.status, ...causeFields(error.cause) }, error.body.title);
      }
      sendProblem(res, error);
    }
  };

  // Errors go to next() here, not through the returned promise, which Express 4 ignores.
  const middleware = ((req: Request, res: Response, next: NextFunction) => void handle(req, res, next).catch(next)) as QuotaGuard;
  const drain = async (): Promise<void> => {
    while (open > 0) await new Promise<void>((resolve) => drained.push(resolve));
  };
  return Object.assign(middleware, {
    options: config,
    drain,
    flush: async () => {
      await drain();
      return flushJournal();
    },
    journalStats,
    close: async () => {
      await drain();
      if (failOpen !== null) {
        // A shared FailOpenTollgate is closed by its owner; this guard's requests are settled into it by now.
        if (ownsFailOpen) await failOpen.close();
        return;
      }
      const own = journal as LocalJournal;
      await own.flush().catch(() => undefined);
      const { size } = own.stats();
      if (size > 0) logger.warn({ event: 'journal.closed_unwritten', kind: config.kind, entries: size }, 'closing with journal entries not written to Redis; they are lost');
      await own.close();
    },
  });
}

/**
 * A response that fails (status 400 or more) is refunded: its RateLimit header must then show
 * what remains without this request's cost. Node writes headers through `writeHead` (implicitly
 * on the first write), the last moment the status is known and the headers can still change.
 */
function reportRefundOnFailure(res: Response, policy: string, admission: Decision, cost: number): void {
  const writeHead = res.writeHead as (this: Response, status: unknown, reason?: unknown, headers?: unknown) => Response;
  // Fixed arity, no rest arguments: this runs for every guarded response.
  res.writeHead = function writeHeadAfterRefund(this: Response, status: unknown, reason?: unknown, headers?: unknown): Response {
    const code = typeof status === 'number' ? status : this.statusCode;
    if (code >= 400 && !this.headersSent) setRateLimitHeaders(this, policy, { ...admission, used: admission.used - cost }, Date.now());
    // writeHead(status), writeHead(status, headers) and writeHead(status, reason, headers) as called.
    if (arguments.length <= 1) return writeHead.call(this, status);
    if (arguments.length === 2) return writeHead.call(this, status, reason);
    return writeHead.call(this, status, reason, headers);
  } as Response['writeHead'];
}

/** True when `outcome` keeps every unit as a success: what the admission already charged. */
function isPlainSuccess(outcome: Outcome, cost: number): boolean {
  return outcome === 'success' || (typeof outcome === 'object' && outcome.success === cost);
}

/** Problems whose every occurrence is not worth a line: the observer logs their state changes. */
const QUIET_CODES = new Set<string>([HTTP_ERROR_CODES.redisUnavailable, HTTP_ERROR_CODES.journalFull]);

/** A cause as log fields: `code` for our errors, `error` the message. Never a request's key. */
function causeFields(cause: unknown): { error: string; cause_code?: string } {
  if (cause instanceof TollgateError) return { cause_code: cause.code, error: cause.message };
  return { error: cause instanceof Error ? cause.message : String(cause) };
}

// Redis connections: creating one from a URL, bounding every call by a timeout, and mapping failures to typed errors.
import { Redis, type Cluster } from 'ioredis';
import { ERROR_CODES, RedisUnavailableError, TollgateError, UnexpectedReplyError } from '../core/errors.js';

/** A Redis connection Tollgate can use: a single node or a cluster client from ioredis. */
export type RedisClient = Redis | Cluster;

/**
 * What every ioredis client has and Tollgate relies on, whichever copy of ioredis made it. An
 * app may hold a second copy of ioredis (another version, or a bundler's duplicate), whose
 * classes fail `instanceof` against ours; so a client is recognised by its shape.
 */
const CLIENT_METHODS = ['defineCommand', 'pipeline', 'multi', 'sendCommand', 'evalsha', 'hgetall', 'time', 'quit', 'disconnect', 'on'] as const;

/**
 * True for an ioredis `Redis` or `Cluster` from any copy of ioredis: the `isCluster` flag both
 * set, their `options` and connection `status`, the commands Tollgate calls, and `nodes()` on a
 * cluster. Anything else (a plain object, another Redis library's client) is refused.
 */
export function isRedisClient(value: unknown): value is RedisClient {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  if (typeof candidate.isCluster !== 'boolean' || typeof candidate.status !== 'string') return false;
  if (typeof candidate.options !== 'object' || candidate.options === null) return false;
  if (!CLIENT_METHODS.every((method) => typeof candidate[method] === 'function')) return false;
  return candidate.isCluster === false || typeof candidate.nodes === 'function';
}

/** Whether `client` is a cluster client (by its flag, not `instanceof`: see {@link isRedisClient}). */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

/** Opens a client for a `redis://` or `rediss://` URL that fails fast instead of queueing forever. */
export function connect(url: string, timeoutMs: number): Redis {
  const client = new Redis(url, {
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    // Keep reconnecting in the background; each call is still bounded by its own timeout.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  });
  // Connection errors reach callers as RedisUnavailableError from the call that needed Redis;
  // without a listener ioredis would also print each reconnect failure.
  client.on('error', () => {});
  return client;
}

/** True for errors that mean "Redis answered, and said no" rather than "Redis is not there". */
function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * Replies by which a Redis that is there says it cannot serve writes right now: a replica
 * after a failover (READONLY), a master without enough replicas (NOREPLICAS, with
 * min-replicas-to-write), a replica cut off from its master (MASTERDOWN), a server still
 * loading (LOADING), a busy script (BUSY), a cluster without all its slots (CLUSTERDOWN), a
 * slot that moved or is moving and was not followed (MOVED, ASK, TRYAGAIN). Redis ran nothing
 * of the command, so the caller may retry: "unavailable".
 */
const NOT_SERVING = ['READONLY', 'NOREPLICAS', 'MASTERDOWN', 'LOADING', 'BUSY', 'CLUSTERDOWN', 'MOVED', 'ASK', 'TRYAGAIN'];

/** Maps anything a Redis call throws onto Tollgate's typed errors, keeping the original as `cause`. */
export function toTollgateError(error: unknown): TollgateError {
  if (error instanceof TollgateError) return error;
  if (isReplyError(error)) {
    if (error.message.startsWith('WRONGTYPE')) {
      return new TollgateError(ERROR_CODES.invalidConfig, 'a Tollgate key holds the wrong Redis type', { cause: error });
    }
    if (NOT_SERVING.some((prefix) => error.message.startsWith(`${prefix} `))) {
      return new RedisUnavailableError(`Redis cannot serve writes right now: ${error.message}`, { cause: error });
    }
    return new UnexpectedReplyError(`Redis refused a Tollgate command: ${error.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new RedisUnavailableError(`Redis is unavailable: ${message}`, { cause: error });
}

/** What ioredis says when it refuses a command it has no connection for and no queue to hold it in. */
const NEVER_SENT = [
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
];

/**
 * True when `error` (or one of its causes) says the command was refused before it was
 * written to any socket: Redis cannot have run it, now or later. Timeouts and closed
 * connections are ambiguous and answer false.
 */
export function neverSent(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (NEVER_SENT.includes(current.message)) return true;
  }
  return false;
}

/**
 * Runs a Redis call, rejecting with {@link RedisUnavailableError} if it has not settled
 * within `timeoutMs`. A timed-out write may still reach Redis later: callers that retry
 * should pass a request id so the retry is not counted twice.
 */
export async function bounded<T>(timeoutMs: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RedisUnavailableError(`Redis did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([call(), timeout]);
  } catch (error) {
    throw toTollgateError(error);
  } finally {
    clearTimeout(timer);
  }
}

interface PendingCall {
  readonly deadlineMs: number;
  readonly reject: (error: unknown) => void;
}

/**
 * Bounds many calls of one timeout with a single timer instead of a timer and a race per call:
 * calls of the same timeout expire in the order they started, so the oldest pending call is
 * always the next to expire. Rejects a call still running at its deadline with
 * {@link RedisUnavailableError}; what it resolves to afterwards is dropped.
 */
export class CallDeadlines {
  readonly #timeoutMs: number;
  readonly #pending = new Set<PendingCall>();
  #timer: NodeJS.Timeout | null = null;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Runs `call`, rejecting when it has not settled within the timeout. */
  run<T>(call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: PendingCall = { deadlineMs: performance.now() + this.#timeoutMs, reject };
      this.#pending.add(pending);
      if (this.#timer === null) this.#arm(this.#timeoutMs);
      let running: Promise<T>;
      try {
        running = call();
      } catch (error) {
        running = Promise.reject(error);
      }
      running.then(
        (value) => {
          if (this.#pending.delete(pending)) resolve(value);
        },
        (error: unknown) => {
          if (this.#pending.delete(pending)) reject(toTollgateError(error));
        },
      );
    });
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(delayMs)));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = null;
    const nowMs = performance.now();
    for (const pending of this.#pending) {
      if (pending.deadlineMs > nowMs) {
        this.#arm(pending.deadlineMs - nowMs);
        return;
      }
      this.#pending.delete(pending);
      pending.reject(new RedisUnavailableError(`Redis did not answer within ${this.#timeoutMs} ms`));
    }
  }
}

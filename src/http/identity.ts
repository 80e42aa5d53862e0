// Who is calling: the user of `/u/:username/...` proven by its API key, or an app's own identify().
import type { Request, Response } from 'express';
import { sha256 } from '../core/api-keys.js';
import { AuthenticationError, RedisUnavailableError, TollgateError } from '../core/errors.js';
import { nameProblem } from '../core/names.js';
import { bounded, toTollgateError } from '../redis/connection.js';
import type { FailOpenTollgate } from '../fail-open/fail-open-tollgate.js';
import type { Tollgate } from '../tollgate.js';
import { presentedKey } from './api-key.js';
import { HTTP_ERROR_CODES, HttpProblem, internalError, redisDown, unauthorized } from './problems.js';

/** The caller a request is billed to. Its org comes from its `organization` field, read by Tollgate. */
export interface Identity {
  readonly user: string;
}

/**
 * An app's own authentication: return the user to bill, or `null` to answer 401. Throw an
 * {@link HttpProblem} to answer with it; any other throw answers 500. Nothing is counted
 * before it returns.
 */
export type IdentifyFunction = (req: Request, res: Response) => Identity | null | Promise<Identity | null>;

// `/u/<name>/api/v1/...` anywhere in the path, for guards mounted where Express has no :username param.
const USER_PATH = /\/u\/([^/?#]+)\/api\/v1(?:[/?#]|$)/;

/** The `:username` of the route, else the `<name>` of a `/u/<name>/api/v1/` path; `null` when neither. */
export function pathUser(req: Request): string | null {
  const param = (req.params as Record<string, unknown> | undefined)?.username;
  if (typeof param === 'string') return param;
  const match = USER_PATH.exec(req.originalUrl ?? req.url);
  if (match === null) return null;
  try {
    return decodeURIComponent(match[1] as string);
  } catch {
    return null;
  }
}

/** Settings of an {@link Authenticator}, validated by the caller's options. */
export interface AuthenticatorOptions {
  readonly tollgate: Tollgate;
  readonly identify: IdentifyFunction | null;
  readonly timeoutMs: number;
  /** When set (fail-open), keys verified against Redis are remembered there so callers can be recognised while Redis is down. */
  readonly failOpenKeys: FailOpenKeys | null;
}

/** Where fail-open keeps digests of keys proven against Redis (a {@link FailOpenTollgate}). */
export type FailOpenKeys = Pick<FailOpenTollgate, 'rememberKey' | 'recognisesKey'>;

/** What a request presents: the user of its path and the API key it carries, checked for shape only. */
export interface Credentials {
  readonly user: string;
  readonly key: string;
}

/**
 * Checks requests. The API key is compared in constant time (SHA-256 digests, `timingSafeEqual`)
 * with every key `rails:users:<user>` holds (src/core/api-keys.ts); the key never reaches a log
 * or an error. The quota guard has Tollgate check the key inside its consume (one round trip);
 * {@link Authenticator.authenticate} checks it on its own, for routes that spend nothing.
 */
export class Authenticator {
  readonly #options: AuthenticatorOptions;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
  }

  /** True when the app identifies callers itself (no API key of ours to check). */
  get custom(): boolean {
    return this.#options.identify !== null;
  }

  /** The user and key of `/u/:username` + API key, without asking Redis; throws a 401 problem when either is unusable. */
  credentials(req: Request): Credentials {
    const user = pathUser(req);
    const presented = presentedKey(req);
    if (presented.status === 'missing') throw unauthorized(true);
    if (presented.status === 'invalid' || user === null || nameProblem(user) !== null) throw unauthorized(false);
    return { user, key: presented.key };
  }

  /** The caller of `req`, its key checked against Redis now; throws an {@link HttpProblem} (401, 500 or 503) otherwise. */
  async authenticate(req: Request, res: Response): Promise<Identity> {
    if (this.#options.identify !== null) return this.identifyCustom(req, res);
    const { user, key } = this.credentials(req);
    try {
      await bounded(this.#options.timeoutMs, () => this.#options.tollgate.authenticate({ user, apiKey: key }));
    } catch (error) {
      const typed = toTollgateError(error);
      if (typed instanceof AuthenticationError) throw unauthorized(false);
      if (typed instanceof RedisUnavailableError) return this.whileRedisIsDown({ user, key }, typed);
      throw internalError(HTTP_ERROR_CODES.invalidConfig, 'The account configuration could not be read', typed);
    }
    this.remember({ user, key });
    return Object.freeze({ user });
  }

  /** Whether fail-open may recognise the caller without Redis: it proved this very key recently. */
  whileRedisIsDown(credentials: Credentials, cause: TollgateError): Identity {
    if (this.#options.failOpenKeys?.recognisesKey(credentials.user, sha256(credentials.key)) === true) {
      return Object.freeze({ user: credentials.user });
    }
    throw redisDown(cause);
  }

  /** Remembers a key Redis just accepted, for fail-open; does nothing unless fail-open is on. */
  remember(credentials: Credentials): void {
    this.#options.failOpenKeys?.rememberKey(credentials.user, sha256(credentials.key));
  }

  /** The caller as the app's own identify() says. */
  async identifyCustom(req: Request, res: Response): Promise<Identity> {
    let identity: Identity | null;
    try {
      identity = await (this.#options.identify as IdentifyFunction)(req, res);
    } catch (error) {
      if (error instanceof HttpProblem) throw error;
      throw internalError(HTTP_ERROR_CODES.internal, 'Authentication failed on the server', error);
    }
    if (identity === null || typeof identity !== 'object' || nameProblem(identity.user) !== null) throw unauthorized(false);
    return Object.freeze({ user: identity.user });
  }
}

// Who is calling: the user of `/u/:username/...` proven by its API key, or an app's own identify().
import { timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { RedisUnavailableError, TollgateError } from '../core/errors.js';
import { nameProblem } from '../core/names.js';
import { readCredentials } from '../redis/api-credentials.js';
import { toTollgateError } from '../redis/connection.js';
import type { Tollgate } from '../tollgate.js';
import { apiKeyMatches } from '../core/api-keys.js';
import { keyDigest, presentedKey } from './api-key.js';
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
  /** When set, keys verified recently are remembered so callers can be recognised while Redis is down. */
  readonly failOpenCache: { readonly ttlMs: number; readonly maxEntries: number } | null;
}

interface VerifiedKey {
  readonly digest: Buffer;
  readonly verifiedAtMs: number;
}

/**
 * Checks requests. The API key is compared in constant time (SHA-256 digests, `timingSafeEqual`)
 * with `map_key` and with `api_key_sha256` of `rails:users:<user>`; the key never reaches a
 * log or an error.
 */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  // Only digests of keys that were proven against Redis; used only while Redis cannot be asked.
  readonly #verified = new Map<string, VerifiedKey>();

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
  }

  /** The caller of `req`; throws an {@link HttpProblem} (401, 500 or 503) otherwise. */
  async authenticate(req: Request, res: Response): Promise<Identity> {
    if (this.#options.identify !== null) return this.#custom(req, res);
    const user = pathUser(req);
    const presented = presentedKey(req);
    if (presented.status === 'missing') throw unauthorized(true);
    if (presented.status === 'invalid' || user === null || nameProblem(user) !== null) throw unauthorized(false);
    const digest = keyDigest(presented.key);
    let matches: boolean;
    try {
      const stored = await readCredentials(this.#options.tollgate.redis, user, this.#options.timeoutMs);
      matches = apiKeyMatches(digest, stored.keys, stored.serverNowMs);
    } catch (error) {
      const typed = toTollgateError(error);
      if (typed instanceof RedisUnavailableError) return this.#whileRedisIsDown(user, digest, typed);
      throw internalError(HTTP_ERROR_CODES.invalidConfig, 'The account configuration could not be read', typed);
    }
    if (!matches) throw unauthorized(false);
    this.#remember(user, digest);
    return Object.freeze({ user });
  }

  /** Whether fail-open may recognise `user` without Redis: it proved this very key recently. */
  #whileRedisIsDown(user: string, digest: Buffer, cause: TollgateError): Identity {
    const cache = this.#options.failOpenCache;
    const known = this.#verified.get(user);
    if (cache !== null && known !== undefined && Date.now() - known.verifiedAtMs <= cache.ttlMs && timingSafeEqual(known.digest, digest)) {
      return Object.freeze({ user });
    }
    throw redisDown(cause);
  }

  #remember(user: string, digest: Buffer): void {
    const cache = this.#options.failOpenCache;
    if (cache === null) return;
    // Re-inserting moves the user to the end, so the first key is always the least recently verified.
    this.#verified.delete(user);
    this.#verified.set(user, { digest, verifiedAtMs: Date.now() });
    if (this.#verified.size > cache.maxEntries) {
      const oldest = this.#verified.keys().next().value as string;
      this.#verified.delete(oldest);
    }
  }

  async #custom(req: Request, res: Response): Promise<Identity> {
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

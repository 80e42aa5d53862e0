// Reads the config hashes of a user (and its org) and the server clock, in as few round trips as possible.
import { parseOrganization, type AccountSource, type RawHash } from '../core/config.js';
import { ERROR_CODES, NotFoundError, UnexpectedReplyError } from '../core/errors.js';
import { orgConfigKey, userConfigKey } from '../core/keys.js';
import { toTollgateError, type RedisClient } from './connection.js';

/** A user's config as read, and the Redis server's clock at the time of reading. */
export interface AccountSnapshot {
  readonly source: AccountSource;
  readonly serverNowMs: number;
}

function timeToMs(reply: unknown): number {
  if (!Array.isArray(reply) || reply.length !== 2) throw new UnexpectedReplyError('TIME: unexpected reply');
  const [seconds, micros] = reply.map((part) => Number(part)) as [number, number];
  return seconds * 1000 + Math.floor(micros / 1000);
}

function hashReply(reply: unknown): RawHash {
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) {
    throw new UnexpectedReplyError('HGETALL: unexpected reply');
  }
  return reply as RawHash;
}

/** The Redis server's clock, in epoch ms: the one clock every process agrees on. */
export async function serverTimeMs(client: RedisClient): Promise<number> {
  try {
    return timeToMs(await client.time());
  } catch (error) {
    throw toTollgateError(error);
  }
}

/** Unwraps one result of an ioredis pipeline, rethrowing its error as a typed one. */
function pipelineResult(results: Array<[Error | null, unknown]> | null, index: number): unknown {
  const entry = results?.[index];
  if (entry === undefined) throw new UnexpectedReplyError('pipeline: missing result');
  if (entry[0] !== null) throw toTollgateError(entry[0]);
  return entry[1];
}

/** Reads the org hash; throws {@link NotFoundError} when the org has none. */
export async function readOrg(client: RedisClient, org: string): Promise<{ key: string; hash: RawHash }> {
  const key = orgConfigKey(org);
  const hash = await readHash(client, key);
  if (Object.keys(hash).length === 0) throw new NotFoundError(ERROR_CODES.unknownOrg, `unknown org: no ${key} hash`);
  return { key, hash };
}

/**
 * Reads `rails:users:<user>` with the server's TIME in one round trip, then the org's hash
 * when the user names one. Throws {@link NotFoundError} for a user or org without a hash.
 */
export async function readAccount(client: RedisClient, user: string): Promise<AccountSnapshot> {
  const userKey = userConfigKey(user);
  const results = await client.pipeline().hgetall(userKey).time().exec();
  const userHash = hashReply(pipelineResult(results, 0));
  const serverNowMs = timeToMs(pipelineResult(results, 1));
  if (Object.keys(userHash).length === 0) {
    throw new NotFoundError(ERROR_CODES.unknownUser, `unknown user: no ${userKey} hash`);
  }
  const org = parseOrganization(userKey, userHash.organization);
  if (org === null) {
    return { source: { user, userKey, userHash, org: null, orgKey: null, orgHash: null }, serverNowMs };
  }
  const orgConfig = await readOrg(client, org);
  return { source: { user, userKey, userHash, org, orgKey: orgConfig.key, orgHash: orgConfig.hash }, serverNowMs };
}

/**
 * Remembers each user's config snapshot for a short while, so a steady stream of decisions
 * costs one round trip (the script) instead of two or three. Safe because the decide
 * script re-checks every config field a plan relied on: a stale entry can only cause a
 * CONFIG_CHANGED retry (which reads afresh), never a decision on old config.
 */
export class AccountCache {
  readonly #client: RedisClient;
  readonly #ttlMs: number;
  readonly #maxUsers: number;
  /** Insertion-ordered, so the first key is the oldest: evicted first when full. */
  readonly #entries = new Map<string, { source: AccountSource; offsetMs: number; readAtMs: number }>();

  constructor(client: RedisClient, ttlMs: number, maxUsers: number) {
    this.#client = client;
    this.#ttlMs = ttlMs;
    this.#maxUsers = maxUsers;
  }

  /**
   * The user's snapshot: from the cache when `fresh` is false and the entry is young, with
   * the server clock estimated from the offset measured when it was read. TIME ran before
   * its reply arrived, so the estimate errs early, never late.
   */
  async read(user: string, fresh: boolean): Promise<AccountSnapshot> {
    const nowMs = Date.now();
    const cached = this.#entries.get(user);
    if (!fresh && cached !== undefined && nowMs - cached.readAtMs < this.#ttlMs) {
      return { source: cached.source, serverNowMs: nowMs + cached.offsetMs };
    }
    const snapshot = await readAccount(this.#client, user);
    if (this.#ttlMs > 0) {
      const readAtMs = Date.now();
      this.#entries.delete(user);
      this.#entries.set(user, { source: snapshot.source, offsetMs: snapshot.serverNowMs - readAtMs, readAtMs });
      if (this.#entries.size > this.#maxUsers) this.#entries.delete(this.#entries.keys().next().value as string);
    }
    return snapshot;
  }

  /** Drops a user's entry: its config changed under a decision. */
  forget(user: string): void {
    this.#entries.delete(user);
  }
}

/** A config hash as stored (empty when the key does not exist). */
export async function readHash(client: RedisClient, key: string): Promise<RawHash> {
  try {
    return hashReply(await client.hgetall(key));
  } catch (error) {
    throw toTollgateError(error);
  }
}

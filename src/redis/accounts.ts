// Reads the config hashes of a user (and its org) and the server clock, in as few round trips as possible.
import { ORGANIZATION_FIELD, parseOrganization, type AccountSource, type RawHash } from '../core/config.js';
import { ERROR_CODES, InvalidConfigError, NotFoundError, UnexpectedReplyError } from '../core/errors.js';
import { CARTO_LAYOUT, type KeyLayout } from '../core/layout.js';
import { BoundedLru } from '../core/lru.js';
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
export async function readOrg(client: RedisClient, org: string, layout: KeyLayout = CARTO_LAYOUT): Promise<{ key: string; hash: RawHash }> {
  const key = layout.orgConfigKey(org);
  const hash = await readHash(client, key);
  if (Object.keys(hash).length === 0) throw new NotFoundError(ERROR_CODES.unknownOrg, `unknown org: no ${key} hash`);
  return { key, hash };
}

/**
 * Checks a user's decision fields before its org is read: `key` is the hash they came from.
 * Throwing refuses the caller (a wrong API key).
 */
export type AccountGate = (userHash: RawHash, serverNowMs: number, key: string) => void;

/**
 * Reads a user's config and the server's TIME, in as few round trips as the layout allows,
 * then the org's hash when the user names one. Throws {@link NotFoundError} for a user or org
 * without a hash, and whatever `gate` throws when it refuses the user's decision fields.
 *
 * CARTO: `rails:users:<user>` with TIME (one round trip, where `gate` runs, so a refused caller
 * costs one round trip, member or not), then `rails:orgs:<org>`. Cluster: the directory entry
 * with TIME; for a member, its member hash, the org hash and TIME together in the org's slot
 * (the TIME of the node that will run its decisions).
 */
export async function readAccount(
  client: RedisClient,
  user: string,
  gate?: AccountGate,
  layout: KeyLayout = CARTO_LAYOUT,
): Promise<AccountSnapshot> {
  const directoryKey = layout.directoryKey(user);
  const results = await client.pipeline().hgetall(directoryKey).time().exec();
  const directory = hashReply(pipelineResult(results, 0));
  const serverNowMs = timeToMs(pipelineResult(results, 1));
  if (Object.keys(directory).length === 0) {
    throw new NotFoundError(ERROR_CODES.unknownUser, `unknown user: no ${directoryKey} hash`);
  }
  const org = parseOrganization(directoryKey, directory[ORGANIZATION_FIELD]);
  const userKey = layout.userConfigKey(user, org);
  if (userKey === directoryKey) {
    gate?.(directory, serverNowMs, directoryKey);
    if (org === null) {
      return { source: { user, userKey, userHash: directory, org: null, orgKey: null, orgHash: null }, serverNowMs };
    }
    const orgConfig = await readOrg(client, org, layout);
    return { source: { user, userKey, userHash: directory, org, orgKey: orgConfig.key, orgHash: orgConfig.hash }, serverNowMs };
  }
  // Cluster layout, a member: its fields live in the org's slot, next to the org's.
  const orgKey = layout.orgConfigKey(org as string);
  const pool = await client.pipeline().hgetall(userKey).hgetall(orgKey).time().exec();
  const userHash = hashReply(pipelineResult(pool, 0));
  const orgHash = hashReply(pipelineResult(pool, 1));
  const poolNowMs = timeToMs(pipelineResult(pool, 2));
  if (Object.keys(userHash).length === 0 || userHash[ORGANIZATION_FIELD] !== org) {
    // The directory names a pool that holds no member hash for the user: an edit by hand that
    // skipped the move protocol. Never guessed: the operator re-runs the move.
    throw new InvalidConfigError(
      directoryKey,
      ORGANIZATION_FIELD,
      `names org ${org as string}, but ${userKey} is missing or names another org; run \`tollgate user set-org\` to move the user`,
    );
  }
  gate?.(userHash, poolNowMs, userKey);
  if (Object.keys(orgHash).length === 0) throw new NotFoundError(ERROR_CODES.unknownOrg, `unknown org: no ${orgKey} hash`);
  return { source: { user, userKey, userHash, org, orgKey, orgHash }, serverNowMs: poolNowMs };
}

/** A user's config as cached: the snapshot, the server clock offset, and what was derived from it once. */
export interface CachedAccount {
  readonly source: AccountSource;
  /** Server clock minus local clock when read; TIME ran before its reply arrived, so estimates err early. */
  readonly offsetMs: number;
  /** Local epoch ms of the read. */
  readonly readAtMs: number;
  /** Derived data keyed by its owner (the API keys, compiled plans per kind); dropped with the entry. */
  readonly derived: Map<string, unknown>;
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
  readonly #entries: BoundedLru<string, CachedAccount>;

  readonly #layout: KeyLayout;

  constructor(client: RedisClient, ttlMs: number, maxUsers: number, layout: KeyLayout = CARTO_LAYOUT) {
    this.#client = client;
    this.#layout = layout;
    this.#ttlMs = ttlMs;
    this.#entries = new BoundedLru(maxUsers);
  }

  /** The user's entry when one was read less than the cache's lifetime ago, else `undefined`. */
  cached(user: string): CachedAccount | undefined {
    const entry = this.#entries.peek(user);
    return entry !== undefined && Date.now() - entry.readAtMs < this.#ttlMs ? entry : undefined;
  }

  /** Reads the user's config now (throws NotFoundError for an unknown user, or what `gate` throws) and caches it. */
  async load(user: string, gate?: AccountGate): Promise<CachedAccount> {
    const snapshot = await readAccount(this.#client, user, gate, this.#layout);
    const readAtMs = Date.now();
    const entry: CachedAccount = { source: snapshot.source, offsetMs: snapshot.serverNowMs - readAtMs, readAtMs, derived: new Map() };
    if (this.#ttlMs > 0) this.#entries.set(user, entry);
    return entry;
  }

  /** Drops a user's entry: its config changed under a decision, or could not be read. */
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

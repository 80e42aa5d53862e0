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
  const hash = hashReply(await client.hgetall(key));
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

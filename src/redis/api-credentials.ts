// Reads the API key fields of a user's config hash, for the HTTP layer's key check.
import { storedApiKeys, type StoredApiKey } from '../core/api-keys.js';
import { userConfigKey } from '../core/keys.js';
import { bounded, type RedisClient } from './connection.js';

/** The keys a user hash holds (none for a user without a hash) and the server clock, to judge expiries. */
export interface RawCredentials {
  readonly keys: readonly StoredApiKey[];
  readonly serverNowMs: number;
}

/**
 * HGETALLs `rails:users:<user>` with the server's TIME in one round trip, bounded by
 * `timeoutMs`; throws `RedisUnavailableError` when Redis does not answer. `user` must be a
 * name already checked by core/names.ts. Every stored form (map_key, unnamed and named
 * digests, expiries) is read by core/api-keys.ts.
 */
export async function readCredentials(client: RedisClient, user: string, timeoutMs: number): Promise<RawCredentials> {
  const results = await bounded(timeoutMs, () => client.pipeline().hgetall(userConfigKey(user)).time().exec());
  const [hashResult, timeResult] = results ?? [];
  if (hashResult?.[0]) throw hashResult[0];
  if (timeResult?.[0]) throw timeResult[0];
  const hash = (hashResult?.[1] ?? {}) as Record<string, string>;
  const [seconds, micros] = (timeResult?.[1] as [string, string] | undefined) ?? ['0', '0'];
  return { keys: storedApiKeys(hash), serverNowMs: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) };
}

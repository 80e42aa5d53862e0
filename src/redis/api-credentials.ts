// Reads the API key fields of a user's config hash, for the HTTP layer's key check.
import { API_KEY_SHA256_FIELD, MAP_KEY_FIELD } from '../core/config.js';
import { userConfigKey } from '../core/keys.js';
import { bounded, type RedisClient } from './connection.js';

/** The raw key fields of `rails:users:<user>`; both `null` for a user without a hash. */
export interface RawCredentials {
  readonly mapKey: string | null;
  readonly keySha256Hex: string | null;
}

/**
 * HMGETs `map_key` and `api_key_sha256` of `rails:users:<user>` in one round trip, bounded
 * by `timeoutMs`; throws `RedisUnavailableError` when Redis does not answer. `user` must be
 * a name already checked by core/names.ts.
 */
export async function readCredentials(client: RedisClient, user: string, timeoutMs: number): Promise<RawCredentials> {
  const [mapKey, keySha256Hex] = await bounded(timeoutMs, () =>
    client.hmget(userConfigKey(user), MAP_KEY_FIELD, API_KEY_SHA256_FIELD),
  );
  return { mapKey: mapKey || null, keySha256Hex: keySha256Hex || null };
}

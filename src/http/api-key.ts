// API keys on the wire: where a request carries one, and constant-time comparison with what a user hash stores.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

export { API_KEY_SHA256_FIELD, MAP_KEY_FIELD } from '../core/config.js';

/** Longest key accepted; anything longer is refused before it is hashed. */
export const MAX_API_KEY_LENGTH = 512;

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** What a request presented: no key, an unusable one, or a key. */
export type PresentedKey =
  | { readonly status: 'missing' }
  | { readonly status: 'invalid' }
  | { readonly status: 'present'; readonly key: string };

/**
 * The API key of a request, from the `api_key` query parameter or `Authorization: Bearer`.
 * A repeated parameter, an overlong key, or two different keys in both places are `invalid`:
 * guessing which one the client meant would be a way around the check.
 */
export function presentedKey(req: Request): PresentedKey {
  const fromQuery = (req.query as Record<string, unknown> | undefined)?.api_key;
  const header = req.headers.authorization;
  let fromHeader: string | undefined;
  if (typeof header === 'string' && /^bearer\b/i.test(header)) {
    const match = BEARER.exec(header);
    if (match === null) return { status: 'invalid' };
    fromHeader = match[1];
  }
  if (fromQuery !== undefined && typeof fromQuery !== 'string') return { status: 'invalid' };
  const candidates = [fromQuery, fromHeader].filter((key): key is string => key !== undefined);
  if (candidates.length === 0) return { status: 'missing' };
  if (candidates.some((key) => key.length === 0 || key.length > MAX_API_KEY_LENGTH)) return { status: 'invalid' };
  const [first, second] = candidates as [string, string | undefined];
  if (second !== undefined && !timingSafeEqual(keyDigest(first), keyDigest(second))) return { status: 'invalid' };
  return { status: 'present', key: first };
}

/** SHA-256 of a key: equal-length buffers, so `timingSafeEqual` never throws and length never leaks. */
export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The stored credentials of a user, as read from its config hash. */
export interface StoredCredentials {
  /** `map_key`, the key in clear (CARTO); `null` when absent or empty. */
  readonly mapKey: string | null;
  /** `api_key_sha256`, hex SHA-256 of the key; `null` when absent, empty or not 64 hex digits. */
  readonly keySha256Hex: string | null;
}

const NO_MATCH = Buffer.alloc(32);

/**
 * Whether `presented` (a digest from {@link keyDigest}) is the user's key. Both stored forms
 * are compared in constant time and both comparisons always run, so timing tells nothing
 * about which form a user has.
 */
export function keyMatches(presented: Buffer, stored: StoredCredentials): boolean {
  const mapKeyDigest = stored.mapKey === null ? NO_MATCH : keyDigest(stored.mapKey);
  const storedDigest = stored.keySha256Hex !== null && SHA256_HEX.test(stored.keySha256Hex)
    ? Buffer.from(stored.keySha256Hex, 'hex')
    : NO_MATCH;
  const byMapKey = timingSafeEqual(presented, mapKeyDigest) && stored.mapKey !== null;
  const byDigest = timingSafeEqual(presented, storedDigest) && storedDigest !== NO_MATCH;
  return byMapKey || byDigest;
}

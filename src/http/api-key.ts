// API keys on the wire: where a request carries one (the stored forms and the comparison live in core/api-keys.ts).
import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { MAX_API_KEY_LENGTH, sha256 } from '../core/api-keys.js';

export { API_KEY_SHA256_FIELD, MAP_KEY_FIELD } from '../core/config.js';


const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** What a request presented: no key, an unusable one, or a key. */
export type PresentedKey =
  | { readonly status: 'missing' }
  | { readonly status: 'invalid' }
  | { readonly status: 'present'; readonly key: string };

const MISSING: PresentedKey = Object.freeze({ status: 'missing' });
const INVALID: PresentedKey = Object.freeze({ status: 'invalid' });
const usableLength = (key: string): boolean => key.length > 0 && key.length <= MAX_API_KEY_LENGTH;

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
    if (match === null) return INVALID;
    fromHeader = match[1];
  }
  if (fromQuery !== undefined && typeof fromQuery !== 'string') return INVALID;
  const first = fromQuery ?? fromHeader;
  if (first === undefined) return MISSING;
  if (!usableLength(first) || (fromHeader !== undefined && !usableLength(fromHeader))) return INVALID;
  if (fromQuery !== undefined && fromHeader !== undefined && !timingSafeEqual(sha256(fromQuery), sha256(fromHeader))) return INVALID;
  return { status: 'present', key: first };
}


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
  if (second !== undefined && !timingSafeEqual(sha256(first), sha256(second))) return { status: 'invalid' };
  return { status: 'present', key: first };
}


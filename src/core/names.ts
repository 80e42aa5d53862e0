// Validation of every client-supplied string that becomes part of a Redis key name.
import { ERROR_CODES, InvalidInputError, type TollgateErrorCode } from './errors.js';

/** Longest user, org, provider or request id accepted. */
export const MAX_NAME_LENGTH = 128;

// Key separators and glob characters would let a name reach another user's keys or
// widen a SCAN pattern; whitespace and control characters make keys unreadable in redis-cli.
const FORBIDDEN = /[:*?[\]{}\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** What a name is used for; it appears in error messages. */
export type NameRole = 'user' | 'org' | 'provider' | 'request id';

/** Why `value` cannot be used as a key part, or `null` when it can. */
export function nameProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (FORBIDDEN.test(value)) {
    return 'must not contain ":", "*", "?", "[", "]", "{", "}", whitespace or control characters';
  }
  return null;
}

/**
 * Returns `value` when it is safe as a key part, else throws an {@link InvalidInputError}.
 * The offending value is never echoed: it may be long, binary or a secret pasted by mistake.
 */
export function assertName(role: NameRole, value: unknown): string {
  const problem = nameProblem(value);
  if (problem !== null) {
    const code: TollgateErrorCode = role === 'request id' ? ERROR_CODES.invalidRequestId : ERROR_CODES.invalidName;
    throw new InvalidInputError(code, `invalid ${role} name: ${problem}`);
  }
  return value as string;
}

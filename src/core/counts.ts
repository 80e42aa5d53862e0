// What a usage count may be: the rule decide.lua applies to every score it sums, in TypeScript for the operators' tools.

/** Largest count a sorted-set score (a double) holds exactly: 2^53 - 1. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/**
 * Why a score as Redis prints it (`"12"`, `"-5"`, `"2.5"`, `"1e+300"`, `"inf"`) cannot be a
 * count Tollgate wrote, or `null` when it can: a non-negative integer up to {@link MAX_COUNTER}.
 */
export function badCountProblem(score: string): string | null {
  const value = Number(score);
  if (Number.isNaN(value)) return 'not a number';
  if (value < 0) return 'negative';
  if (!Number.isInteger(value)) return Number.isFinite(value) ? 'fractional' : 'infinite';
  if (value > MAX_COUNTER) return 'past 2^53 - 1';
  return null;
}

// The status codes decide.lua and settle.lua answer with: one table, stitched into the Lua as `STATUS`.

/**
 * Every status the decide and settle scripts return as the first element of a reply (decide) or
 * per entry (settle). The Lua side gets this very table as a prelude, so the two cannot drift.
 */
export const STATUS = Object.freeze({
  DECIDED: 1,
  REPLAYED: 2,
  CONFIG_CHANGED: 3,
  DAY_CHANGED: 4,
  WRONG_TYPE: 5,
  BAD_COUNTER: 6,
  EXPIRED: 7,
  REQUEST_ID_REUSED: 8,
  COUNTER_LIMIT: 9,
  SETTLED: 10,
  ALREADY_SETTLED: 11,
  UNKNOWN_RESERVATION: 12,
  MISMATCH: 13,
} as const);

/** A status number of {@link STATUS}. */
export type Status = (typeof STATUS)[keyof typeof STATUS];

/** The Lua prelude defining `STATUS` with the same names and numbers. */
export function statusPrelude(): string {
  const fields = Object.entries(STATUS).map(([name, code]) => `${name} = ${code}`);
  return `local STATUS = { ${fields.join(', ')} }\n`;
}

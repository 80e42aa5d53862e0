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

/**
 * Writes every `STATUS.<NAME>` of a Lua source as its number, so the scripts and this table cannot
 * drift and a script builds no status table on each call. An unknown name fails at load time.
 */
export function inlineStatuses(lua: string): string {
  return lua.replace(/\bSTATUS\.([A-Z_]+)\b/g, (_, name: string) => {
    const code = (STATUS as Record<string, number>)[name];
    if (code === undefined) throw new Error(`unknown status STATUS.${name} in a Lua script`);
    return String(code);
  });
}

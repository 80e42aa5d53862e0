// When a quota runs out at the current cycle's daily rate: the dashboard's projected exhaustion date.
import { dayStartMs, utcDay } from './cycle.js';

const DAY_MS = 86_400_000;

/** What the projection needs: the quota as the decision sees it, and the cycle's bounds. */
export interface ProjectionInput {
  readonly quota: number;
  readonly used: number;
  readonly softLimit: boolean;
  readonly cycleStartMs: number;
  readonly resetsAtMs: number;
  readonly nowMs: number;
}

/** The projection: a date, or why there is none. */
export interface Projection {
  /** Units per day so far this cycle (used / days elapsed, today included). */
  readonly dailyRate: number;
  /**
   * `exhausted`: nothing remains; `runs_out`: at this pace the quota runs out on `date`,
   * before the reset; `lasts`: it lasts until the reset; `idle`: nothing used yet;
   * `soft_limit`: never refused; `no_quota`: a quota of 0 refuses everything.
   */
  readonly status: 'exhausted' | 'runs_out' | 'lasts' | 'idle' | 'soft_limit' | 'no_quota';
  /** `YYYY-MM-DD` (UTC) for `runs_out` and `exhausted`, else `null`. */
  readonly date: string | null;
}

const isoDay = (ms: number): string => new Date(dayStartMs(utcDay(ms))).toISOString().slice(0, 10);

/**
 * Projects the day the quota runs out if use goes on at this cycle's average daily rate.
 * Days elapsed count today as a whole day, so a cycle's first hours do not project a rush.
 */
export function projectExhaustion(input: ProjectionInput): Projection {
  const daysElapsed = Math.max(1, Math.floor((dayStartMs(utcDay(input.nowMs)) - input.cycleStartMs) / DAY_MS) + 1);
  const dailyRate = input.used / daysElapsed;
  if (input.softLimit) return { dailyRate, status: 'soft_limit', date: null };
  if (input.quota === 0) return { dailyRate, status: 'no_quota', date: null };
  const remaining = input.quota - input.used;
  if (remaining <= 0) return { dailyRate, status: 'exhausted', date: isoDay(input.nowMs) };
  if (dailyRate === 0) return { dailyRate, status: 'idle', date: null };
  // At `dailyRate` from the cycle's start the quota is used up `quota / dailyRate` days in;
  // the last unit goes on the day holding the moment just before that.
  const runsOutMs = Math.max(input.nowMs, input.cycleStartMs + (input.quota / dailyRate) * DAY_MS - 1);
  if (runsOutMs >= input.resetsAtMs) return { dailyRate, status: 'lasts', date: null };
  return { dailyRate, status: 'runs_out', date: isoDay(runsOutMs) };
}

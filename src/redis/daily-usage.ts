// Reads an owner's counted usage day by day over a range of UTC days, for the dashboard's chart.
import { dayOfMember, dayStartMs, utcDay, yyyymm } from '../core/cycle.js';
import type { Owner } from '../core/keys.js';
import type { KeyLayout } from '../core/layout.js';
import type { Metric } from '../core/quota-kinds.js';
import type { RedisClient } from './connection.js';
import { readSortedSets } from './sorted-sets.js';

const DAY_MS = 86_400_000;

/** One day's counted units. */
export interface DailyUsage {
  /** `YYYY-MM-DD`, UTC. */
  readonly date: string;
  readonly used: number;
}

/**
 * The sum of `metrics` for each UTC day from `fromMs` to `toMs` (inclusive days), one
 * ZRANGE per (metric, month) in one round trip (see readSortedSets). Keys of
 * another type read as 0. `home` is the org whose slot holds a user's counters (cluster layout).
 */
export async function readDailyUsage(
  client: RedisClient,
  layout: KeyLayout,
  owner: Owner,
  home: string | null,
  serviceType: string,
  metrics: readonly Metric[],
  fromMs: number,
  toMs: number,
): Promise<DailyUsage[]> {
  const days: Array<{ date: string; month: string; day: number }> = [];
  for (let ms = dayStartMs(utcDay(fromMs)); ms <= toMs; ms += DAY_MS) {
    const day = utcDay(ms);
    days.push({ date: new Date(ms).toISOString().slice(0, 10), month: yyyymm(day.year, day.month), day: day.day });
  }
  const months = [...new Set(days.map((day) => day.month))];
  const reads = months.flatMap((month) => metrics.map((metric) => ({ month, key: layout.usageKey(owner, home, serviceType, metric, month) })));
  const results = await readSortedSets(client, reads.map((read) => read.key));
  const totals = new Map<string, number>();
  reads.forEach((read, index) => {
    const value = results[index];
    if (value === undefined || value instanceof Error) return;
    for (let i = 0; i + 1 < value.length; i += 2) {
      const day = dayOfMember(String(value[i]));
      if (day === null) continue;
      const slot = `${read.month}:${day}`;
      totals.set(slot, (totals.get(slot) ?? 0) + Number(value[i + 1]));
    }
  });
  return days.map((day) => ({ date: day.date, used: totals.get(`${day.month}:${day.day}`) ?? 0 }));
}

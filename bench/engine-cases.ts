// The engine benchmarks' users and cases, shared by bench:engine (throughput) and bench:redis-work (instructions).
import type { Redis } from 'ioredis';
import { usageKey } from '../src/core/keys.js';
import { quotaKindSpec } from '../src/core/quota-kinds.js';
import type { Tollgate } from '../src/index.js';

/** The smallest correct quota script: check a daily counter and count, one EVALSHA. */
const RAW_LUA = `
local used = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2])) or 0
if used + tonumber(ARGV[1]) > tonumber(ARGV[3]) then return 0 end
redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/** Every bench user's config: a quota no run reaches, a cycle starting on the 10th, key `key<u>`. */
const userFields = (u: number): Record<string, string> => ({ geocoding_quota: '1000000000', period_end_date: '2016-10-10 00:00:00 UTC', map_key: `key${u}` });

/** Users on the first day of their use, and users who used the service every day. */
const FIRST_DAY_PREFIX = 'bench';
const HISTORY_PREFIX = 'bench-history';
const GEOCODING = quotaKindSpec('geocoding');
/** Where a history user's geocoding usage is counted (no provider set: the default one). */
const SERVICE_TYPE = GEOCODING.serviceType(GEOCODING.defaultProvider);

/**
 * Writes `users` users of each kind. A history user has a success and an empty count on every
 * day of last month and of this month before today, as a customer who calls every day has:
 * the decision sums every day of the cycle, so what it costs grows over the month. The other
 * users are on the first day of theirs.
 */
export async function writeBenchUsers(admin: Redis, users: number): Promise<void> {
  const now = new Date();
  const months = [new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)), new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))];
  const pipeline = admin.pipeline();
  for (let u = 0; u < users; u += 1) {
    pipeline.hset(`rails:users:${FIRST_DAY_PREFIX}${u}`, userFields(u));
    const user = `${HISTORY_PREFIX}${u}`;
    pipeline.hset(`rails:users:${user}`, userFields(u));
    for (const month of months) {
      const yyyymm = month.toISOString().slice(0, 7).replace('-', '');
      const lastDay = month.getUTCMonth() === now.getUTCMonth() ? now.getUTCDate() - 1 : new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 0)).getUTCDate();
      for (let day = 1; day <= lastDay; day += 1) {
        const member = String(day).padStart(2, '0');
        for (const metric of GEOCODING.countedMetrics) pipeline.zadd(usageKey({ type: 'user', name: user }, SERVICE_TYPE, metric, yyyymm), 3, member);
      }
    }
  }
  await pipeline.exec();
}

/** One benchmark case: its name and the call it makes for the i-th operation. */
export type EngineCase = readonly [name: string, op: (i: number) => Promise<unknown>];

/**
 * The cases, the raw script first (the baseline every ratio is taken against). `client` is the
 * connection both the raw script and `tollgate` use; users are spread over `users` of each kind.
 */
export function engineCases(client: Redis, tollgate: Tollgate, users: number): EngineCase[] {
  client.defineCommand('rawQuota', { numberOfKeys: 1, lua: RAW_LUA });
  const raw = (client as unknown as { rawQuota: (...args: Array<string | number>) => Promise<number> }).rawQuota.bind(client);
  const day = new Date().toISOString().slice(8, 10);
  const user = (i: number): string => `${FIRST_DAY_PREFIX}${i % users}`;
  return [
    ['raw EVALSHA (check + count one counter)', (i) => raw(`raw:${user(i)}`, 1, day, 1e12)],
    ['tollgate consume', (i) => tollgate.consume({ user: user(i), kind: 'geocoding' })],
    ['tollgate consume with apiKey', (i) => tollgate.consume({ user: user(i), kind: 'geocoding', apiKey: `key${i % users}` })],
    ['tollgate consume, a month of history', (i) => tollgate.consume({ user: `${HISTORY_PREFIX}${i % users}`, kind: 'geocoding' })],
    ['tollgate check', (i) => tollgate.check({ user: user(i), kind: 'geocoding' })],
    [
      'tollgate consume + settle failed (refund)',
      async (i) => {
        const admission = await tollgate.consume({ user: user(i), kind: 'geocoding' });
        if (admission.allowed) await tollgate.settle(admission.reservation, 'failed');
      },
    ],
  ];
}

export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

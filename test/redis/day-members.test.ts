// Which usage members are days: decide.lua, usage(), the reports and the dashboard's daily usage read them by one rule.
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { planReport, reportRows, type ReportRow } from '../../src/admin/reports.js';
import { dayOfMember } from '../../src/core/cycle.js';
import { CARTO_LAYOUT } from '../../src/core/layout.js';
import { readDailyUsage } from '../../src/redis/daily-usage.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);

/** "Today" for every reader: the 20th of November 2026, in a cycle that starts on the 1st. */
const NOW_MS = Date.UTC(2026, 10, 20, 12);
const MONTH = '202611';

describe('day members', () => {
  it('dayOfMember takes one or two digits and nothing else', () => {
    expect(['05', '5', '31', '00', '0', '99'].map(dayOfMember)).toEqual([5, 5, 31, 0, 0, 99]);
    for (const member of ['', ' 5', '5 ', '5.0', '5.', '+5', '-5', '1e1', '0x5', '005', 'ab', '٥', 'Infinity']) {
      expect(dayOfMember(member), member).toBeNull();
    }
  });

  it('"05" and "5" both count for day 5 and add up; any other member counts nowhere; every reader agrees', async () => {
    const user = name('dm');
    await writeUser(redis.client(), user, { geocoding_quota: '7', period_end_date: '2016-10-01 00:00:00 UTC' });
    const key = `user:${user}:geocoder_here:success_responses:${MONTH}`;
    // 6 units on days of the cycle so far: 2 + 3 on the 5th (both spellings), 1 on the 7th.
    await redis.client().zadd(key, 2, '05', 3, '5', 1, '7');
    // Not days, each with a count that would show if any reader took it: a day after today, and garbage.
    await redis.client().zadd(key, 50, '21', 100, '00', 100, '5.0', 100, ' 6', 100, '1e1', 100, '', 100, '0x7', 100, '+8', 100, '007');

    const tollgate = new Tollgate({ redis: redis.client(), clock: () => NOW_MS });
    expect(await tollgate.check({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, used: 6 });
    expect((await tollgate.usage({ user, kind: 'geocoding' })).metrics.success_responses).toBe(6);

    const daily = await readDailyUsage(redis.client(), CARTO_LAYOUT, { type: 'user', name: user }, null, 'geocoder_here', ['success_responses'], Date.UTC(2026, 10, 1), NOW_MS);
    expect(daily.filter((day) => day.used !== 0)).toEqual([
      { date: '2026-11-05', used: 5 },
      { date: '2026-11-07', used: 1 },
    ]);

    const rows: ReportRow[] = [];
    for await (const row of reportRows(redis.client(), planReport({ target: { user }, frame: 'cycle', month: MONTH }, NOW_MS, 1))) rows.push(row);
    const success = rows.filter((row) => row.metric === 'success_responses').map((row) => [row.date, row.count]);
    // The report covers the whole cycle, so the 21st shows there; the garbage does not.
    expect(success).toEqual([
      ['2026-11-05', 5],
      ['2026-11-07', 1],
      ['2026-11-21', 50],
    ]);

    // The quota of 7 leaves one unit: the decision counted the same 6.
    expect(await tollgate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, used: 7 });
    expect(await tollgate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: false, used: 7 });
    // Tollgate's own charge went to the two-digit member of today.
    expect(await redis.client().zscore(key, '20')).toBe('1');
  });
});

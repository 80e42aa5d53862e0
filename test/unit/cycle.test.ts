// Billing cycles: SPEC section 3's worked examples, month-end clamping, leap years, year ends.
import { describe, expect, it } from 'vitest';
import { billingCycle, dayMember, utcDay, yyyymm, type CalendarDay } from '../../src/core/cycle.js';

const day = (iso: string): CalendarDay => {
  const [year, month, d] = iso.split('-').map(Number) as [number, number, number];
  return { year, month, day: d };
};
const iso = (d: CalendarDay): string =>
  `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;

describe('billingCycle', () => {
  it.each([
    // today, period_end_date day, cycle start, next cycle start
    ['2017-03-21', 21, '2017-03-21', '2017-04-21'], // SPEC example 1
    ['2017-03-20', 21, '2017-02-21', '2017-03-21'], // SPEC example 2
    ['2017-03-21', 31, '2017-02-28', '2017-03-31'], // SPEC example 3: clamped to February's end
    ['2017-01-30', 31, '2016-12-31', '2017-01-31'], // SPEC example 4: across the year end
    ['2016-03-01', 30, '2016-02-29', '2016-03-30'], // leap year February
    ['2016-02-29', 30, '2016-02-29', '2016-03-30'], // anchor clamps to Feb 29 in a leap year, so today starts it
    ['2016-02-28', 30, '2016-01-30', '2016-02-29'], // the day before, the cycle began in January
    ['2017-02-28', 30, '2017-02-28', '2017-03-30'], // ...and to Feb 28 otherwise
    ['2026-12-31', 31, '2026-12-31', '2027-01-31'], // December to January
    ['2027-01-05', 10, '2026-12-10', '2027-01-10'], // cycle spans two years
    ['2026-11-22', 1, '2026-11-01', '2026-12-01'],
    ['2026-04-30', 31, '2026-04-30', '2026-05-31'], // 30-day month clamps 31
  ])('today %s, anchor day %i -> starts %s, resets %s', (today, anchor, start, next) => {
    const cycle = billingCycle(day(today), anchor);
    expect(iso(cycle.start)).toBe(start);
    expect(iso(cycle.nextStart)).toBe(next);
  });

  it('uses calendar months when there is no period_end_date', () => {
    const cycle = billingCycle(day('2026-11-22'), null);
    expect(iso(cycle.start)).toBe('2026-11-01');
    expect(iso(cycle.nextStart)).toBe('2026-12-01');
    expect(cycle.spans).toEqual([{ yyyymm: '202611', fromDay: 1, toDay: 22 }]);
  });

  it('reads one month key when the cycle started this month', () => {
    expect(billingCycle(day('2017-03-25'), 21).spans).toEqual([{ yyyymm: '201703', fromDay: 21, toDay: 25 }]);
  });

  it('reads two month keys when the cycle started last month, never days after today', () => {
    expect(billingCycle(day('2017-03-20'), 21).spans).toEqual([
      { yyyymm: '201702', fromDay: 21, toDay: 28 },
      { yyyymm: '201703', fromDay: 1, toDay: 20 },
    ]);
    expect(billingCycle(day('2017-01-30'), 31).spans).toEqual([
      { yyyymm: '201612', fromDay: 31, toDay: 31 },
      { yyyymm: '201701', fromDay: 1, toDay: 30 },
    ]);
    expect(billingCycle(day('2016-03-01'), 30).spans).toEqual([
      { yyyymm: '201602', fromDay: 29, toDay: 29 },
      { yyyymm: '201603', fromDay: 1, toDay: 1 },
    ]);
  });
});

describe('key parts', () => {
  it('pads months and days to two digits', () => {
    expect(yyyymm(2026, 1)).toBe('202601');
    expect(yyyymm(2026, 12)).toBe('202612');
    expect(dayMember(3)).toBe('03');
    expect(dayMember(31)).toBe('31');
  });

  it('takes the day in UTC', () => {
    expect(utcDay(Date.parse('2026-11-22T23:59:59.999Z'))).toEqual({ year: 2026, month: 11, day: 22 });
    expect(utcDay(Date.parse('2026-11-23T00:00:00.000Z'))).toEqual({ year: 2026, month: 11, day: 23 });
  });
});

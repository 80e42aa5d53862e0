// The projected exhaustion date: table of cycles, paces and limits.
import { describe, expect, it } from 'vitest';
import { projectExhaustion } from '../../src/core/projection.js';

const ms = (iso: string): number => Date.parse(iso);
const cycle = { cycleStartMs: ms('2026-11-01T00:00:00Z'), resetsAtMs: ms('2026-12-01T00:00:00Z') };

describe('projectExhaustion', () => {
  it.each([
    // 10 days in (today counts), 100 used: 10 a day; quota 300 is used up 30 days in: the last unit on Nov 30.
    { quota: 300, used: 100, now: '2026-11-10T12:00:00Z', status: 'runs_out', date: '2026-11-30', rate: 10 },
    { quota: 301, used: 100, now: '2026-11-10T12:00:00Z', status: 'lasts', date: null, rate: 10 },
    // 150 a day from Nov 1: 1000 is reached 6.67 days in, on Nov 7.
    { quota: 1000, used: 300, now: '2026-11-02T08:00:00Z', status: 'runs_out', date: '2026-11-07', rate: 150 },
    // Exactly 3 days' worth: the last unit goes on the 3rd day (Nov 3), not the 4th.
    { quota: 30, used: 10, now: '2026-11-01T23:00:00Z', status: 'runs_out', date: '2026-11-03', rate: 10 },
    { quota: 100, used: 100, now: '2026-11-05T00:00:00Z', status: 'exhausted', date: '2026-11-05', rate: 20 },
    { quota: 100, used: 0, now: '2026-11-05T00:00:00Z', status: 'idle', date: null, rate: 0 },
    { quota: 0, used: 0, now: '2026-11-05T00:00:00Z', status: 'no_quota', date: null, rate: 0 },
  ])('quota $quota, used $used at $now: $status $date', ({ quota, used, now, status, date, rate }) => {
    const projection = projectExhaustion({ quota, used, softLimit: false, nowMs: ms(now), ...cycle });
    expect(projection).toEqual({ status, date, dailyRate: rate });
  });

  it('a soft limit is never refused, however fast the pace', () => {
    expect(projectExhaustion({ quota: 10, used: 500, softLimit: true, nowMs: ms('2026-11-05T00:00:00Z'), ...cycle }).status).toBe('soft_limit');
  });

  it('a pace that would run out today when the average says earlier still answers today, not a past day', () => {
    // 900 used on day 1 of 30 with quota 1000: at 900/day the quota runs out on day 2.
    expect(projectExhaustion({ quota: 1000, used: 900, softLimit: false, nowMs: ms('2026-11-01T06:00:00Z'), ...cycle }).date).toBe('2026-11-02');
  });
});

// Billing cycles (SPEC section 3): where the current cycle starts and ends, in UTC calendar days.

/** A UTC calendar day. `month` is 1-12. */
export interface CalendarDay {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

/** One month key's share of a cycle: the `YYYYMM` and the inclusive day-of-month range to sum. */
export interface CycleSpan {
  readonly yyyymm: string;
  readonly fromDay: number;
  readonly toDay: number;
}

/** The cycle that contains a day: its start, the start of the next one, and the month spans used so far. */
export interface Cycle {
  readonly start: CalendarDay;
  readonly nextStart: CalendarDay;
  /** Spans from `start` to today inclusive, oldest first; one or two of them. */
  readonly spans: readonly CycleSpan[];
}

const MS_PER_DAY = 86_400_000;

/** The UTC calendar day of an instant. */
export function utcDay(epochMs: number): CalendarDay {
  const date = new Date(epochMs);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** Midnight UTC at the start of a calendar day, in epoch milliseconds. */
export function dayStartMs(day: CalendarDay): number {
  return Date.UTC(day.year, day.month - 1, day.day);
}

/** The half-open window `[start, end)` of epoch milliseconds that fall on `day`. */
export function dayWindowMs(day: CalendarDay): { startMs: number; endMs: number } {
  const startMs = dayStartMs(day);
  return { startMs, endMs: startMs + MS_PER_DAY };
}

/** Number of days in a month. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `YYYYMM` with a zero-padded month, as usage keys spell it. */
export function yyyymm(year: number, month: number): string {
  return `${String(year).padStart(4, '0')}${String(month).padStart(2, '0')}`;
}

/** A day-of-month member as Tollgate writes it into usage sorted sets: always two digits. */
export function dayMember(day: number): string {
  return String(day).padStart(2, '0');
}

const DAY_MEMBER = /^\d\d?$/;

/**
 * The day a usage sorted set's member stands for, as every reader counts it: one or two digits,
 * `"05"` as Tollgate and CARTO write it, or `"5"` as some CARTO writers left it (CARTO's own
 * readers add both). Any other member (`"5.0"`, `" 5"`, `"1e1"`, `""`) is no day: `null`, counted
 * nowhere. decide.lua applies the same rule; a value outside the cycle's days simply never matches.
 */
export function dayOfMember(member: string): number | null {
  return DAY_MEMBER.test(member) ? Number(member) : null;
}

function shiftMonth(year: number, month: number, delta: number): { year: number; month: number } {
  const index = year * 12 + (month - 1) + delta;
  return { year: Math.floor(index / 12), month: (index % 12) + 1 };
}

function anchorIn(year: number, month: number, anchorDay: number): CalendarDay {
  return { year, month, day: Math.min(anchorDay, daysInMonth(year, month)) };
}

/**
 * The billing cycle containing `today` for an anchor day D (the day of `period_end_date`),
 * or for calendar months when `anchorDay` is `null`. The cycle starts on day D of this
 * month if D <= today, else on day D of the previous month; a D past a month's end is
 * clamped to its last day.
 */
export function billingCycle(today: CalendarDay, anchorDay: number | null): Cycle {
  const anchor = anchorDay ?? 1;
  const thisMonth = anchorIn(today.year, today.month, anchor);
  let start: CalendarDay;
  let nextStart: CalendarDay;
  if (thisMonth.day <= today.day) {
    start = thisMonth;
    const next = shiftMonth(today.year, today.month, 1);
    nextStart = anchorIn(next.year, next.month, anchor);
  } else {
    const previous = shiftMonth(today.year, today.month, -1);
    start = anchorIn(previous.year, previous.month, anchor);
    nextStart = thisMonth;
  }

  const spans: CycleSpan[] = [];
  if (start.year === today.year && start.month === today.month) {
    spans.push({ yyyymm: yyyymm(today.year, today.month), fromDay: start.day, toDay: today.day });
  } else {
    spans.push({ yyyymm: yyyymm(start.year, start.month), fromDay: start.day, toDay: daysInMonth(start.year, start.month) });
    spans.push({ yyyymm: yyyymm(today.year, today.month), fromDay: 1, toDay: today.day });
  }
  return { start, nextStart, spans };
}

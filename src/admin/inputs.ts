// Parsing of every operator-supplied value (quotas, credits, dates, time frames, switches) into checked domain values.
import { MAX_COUNT } from '../core/config.js';
import { daysInMonth, type CalendarDay } from '../core/cycle.js';
import { ERROR_CODES, InvalidInputError } from '../core/errors.js';

/** Millicredits per credit: amounts are kept as integers of 1/1000 credit so sums stay exact. */
export const MILLICREDITS_PER_CREDIT = 1000;

const CREDITS = /^(\d{1,12})(?:\.(\d{1,3}))?$/;
const DIGITS = /^\d{1,16}$/;
const PROVIDER = /^[A-Za-z0-9_-]{1,64}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?Z$/;
const CARTO_DATE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) (UTC|[+-]\d{4})$/;

/** The report time frames of SPEC 6 and how many days each covers. */
export const TIME_FRAMES = Object.freeze({
  today: 1,
  week: 7,
  '14days': 14,
  '30days': 30,
  '60days': 60,
  '90days': 90,
  '6months': 180,
  year: 365,
} as const);

/** A report time frame name. */
export type TimeFrame = keyof typeof TIME_FRAMES;

/** A quota: a non-negative integer up to {@link MAX_COUNT}, given as a number or a string of digits. */
export function parseQuota(value: unknown): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !DIGITS.test(text) || Number(text) > MAX_COUNT) {
    throw new InvalidInputError(ERROR_CODES.invalidQuota, `quota must be a non-negative integer up to ${MAX_COUNT}`);
  }
  return Number(text);
}

/**
 * A credit amount in millicredits, from a non-negative decimal with at most 3 decimals
 * ("12", "0.04", 2.5). Parsed from its decimal text, never by float arithmetic.
 */
export function parseCredits(value: unknown): number {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  const match = typeof text === 'string' ? CREDITS.exec(text) : null;
  if (match === null) {
    throw new InvalidInputError(
      ERROR_CODES.invalidCredits,
      'credits must be a non-negative number with at most 3 decimals and 12 integer digits',
    );
  }
  const whole = Number(match[1]);
  const fraction = Number((match[2] ?? '').padEnd(3, '0'));
  return whole * MILLICREDITS_PER_CREDIT + fraction;
}

/** Millicredits as credits for JSON output; -1 (no limit) stays -1. Display only: no sums are made of it. */
export function toCredits(millicredits: number): number {
  return millicredits < 0 ? -1 : millicredits / MILLICREDITS_PER_CREDIT;
}

/** A provider name that is safe inside a usage key name. */
export function parseProvider(value: unknown): string {
  if (typeof value !== 'string' || !PROVIDER.test(value)) {
    throw new InvalidInputError(ERROR_CODES.invalidProvider, 'provider must be 1-64 letters, digits, "_" or "-"');
  }
  return value;
}

/** `on`/`off`, `true`/`false` (strings or booleans) as a boolean. */
export function parseSwitch(value: unknown): boolean {
  if (value === true || value === 'on' || value === 'true') return true;
  if (value === false || value === 'off' || value === 'false') return false;
  throw new InvalidInputError(ERROR_CODES.invalidArgument, 'expected on or off');
}

function calendarDay(year: number, month: number, day: number): CalendarDay | null {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  return { year, month, day };
}

/** A UTC day from `YYYY-MM-DD` or an ISO timestamp in UTC (`2026-01-31T12:00:00Z`). */
export function parseDay(value: unknown): CalendarDay {
  const match = typeof value === 'string' ? (DATE.exec(value) ?? TIMESTAMP.exec(value)) : null;
  const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map((part) => Number(part ?? 0));
  const parsed = match === null ? null : calendarDay(year ?? 0, month ?? 0, day ?? 0);
  if (parsed === null || (hour ?? 0) > 23 || (minute ?? 0) > 59 || (second ?? 0) > 59) {
    throw new InvalidInputError(ERROR_CODES.invalidDate, 'date must be YYYY-MM-DD or an ISO timestamp ending in Z');
  }
  return parsed;
}

/**
 * A `period_end_date` as CARTO stores it: `YYYY-MM-DD` becomes `YYYY-MM-DD 00:00:00 UTC`;
 * the full forms `... HH:MM:SS UTC` and `... +0000` are kept as given once checked.
 */
export function parsePeriodEndDate(value: unknown): string {
  if (typeof value === 'string' && DATE.test(value)) {
    parseDay(value);
    return `${value} 00:00:00 UTC`;
  }
  const match = typeof value === 'string' ? CARTO_DATE.exec(value) : null;
  const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map(Number);
  if (match === null || calendarDay(year ?? 0, month ?? 0, day ?? 0) === null || hour! > 23 || minute! > 59 || second! > 59) {
    throw new InvalidInputError(ERROR_CODES.invalidDate, 'period end date must be YYYY-MM-DD or "YYYY-MM-DD HH:MM:SS UTC"');
  }
  return value as string;
}

/** A time frame name of {@link TIME_FRAMES}. */
export function parseTimeFrame(value: unknown): TimeFrame {
  if (typeof value !== 'string' || !Object.hasOwn(TIME_FRAMES, value)) {
    throw new InvalidInputError(
      ERROR_CODES.invalidTimeFrame,
      `time frame must be one of ${Object.keys(TIME_FRAMES).join(', ')}`,
    );
  }
  return value as TimeFrame;
}

// Operator input: the zod schemas admin bodies and CLI arguments share, over the one set of value parsers in core.
import { z } from 'zod';
import { KEY_NAME } from '../core/api-keys.js';
import { parseDateInput, parseProviderInput, parseQuotaInput, type DateInput } from '../core/config.js';
import { ERROR_CODES, InvalidInputError } from '../core/errors.js';
import { assertName } from '../core/names.js';
import { parseQuotaKindName, type QuotaKind } from '../core/quota-kinds.js';

/** Millicredits per credit: amounts are kept as integers of 1/1000 credit so sums stay exact. */
export const MILLICREDITS_PER_CREDIT = 1000;

const CREDITS = /^(\d{1,12})(?:\.(\d{1,3}))?$/;
const MONTH = /^(\d{4})(\d{2})$/;

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

/** A frame of a fixed number of days. */
export type DayFrame = keyof typeof TIME_FRAMES;
/** A report time frame: a number of days, or `cycle`, the billing cycle of the report's target. */
export type TimeFrame = DayFrame | 'cycle';
/** Every frame name, in the order help texts list them. */
export const FRAME_NAMES: readonly TimeFrame[] = Object.freeze([...(Object.keys(TIME_FRAMES) as DayFrame[]), 'cycle']);

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

/** A time frame name of {@link FRAME_NAMES}. */
export function parseTimeFrame(value: unknown): TimeFrame {
  if (typeof value !== 'string' || !(FRAME_NAMES as readonly string[]).includes(value)) {
    throw new InvalidInputError(ERROR_CODES.invalidTimeFrame, `time frame must be one of ${FRAME_NAMES.join(', ')}`);
  }
  return value as TimeFrame;
}

/** A billing month `YYYYMM` (month 01-12), as usage keys spell it. */
export function parseMonth(value: unknown): { year: number; month: number } {
  const match = typeof value === 'string' ? MONTH.exec(value) : null;
  const month = Number(match?.[2]);
  if (match === null || month < 1 || month > 12) {
    throw new InvalidInputError(ERROR_CODES.invalidDate, 'month must be YYYYMM, such as 202611');
  }
  return { year: Number(match[1]), month };
}

/** An API key name (`[a-z0-9][a-z0-9_-]{0,31}`): it becomes part of a hash field name. */
export function parseKeyName(value: unknown): string {
  if (typeof value !== 'string' || !KEY_NAME.test(value)) {
    throw new InvalidInputError(ERROR_CODES.invalidName, 'key name must be 1-32 of a-z, 0-9, "_" or "-", starting with a letter or digit');
  }
  return value;
}

/** A rotation's overlap: whole seconds from 0 to 30 days, as a number or digits. */
export function parseOverlapSeconds(value: unknown): number {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{1,7}$/.test(text) || Number(text) > 30 * 86_400) {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, 'overlap must be whole seconds from 0 to 2592000 (30 days)');
  }
  return Number(text);
}

/** Units an operator credits back: a positive integer up to 10^9. */
export function parseUnits(value: unknown): number {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^[1-9]\d{0,8}$/.test(text)) {
    throw new InvalidInputError(ERROR_CODES.invalidCost, 'units must be a positive integer up to 999999999');
  }
  return Number(text);
}

/** A zod schema whose value goes through one of the parsers above; their typed errors pass through untouched. */
const via = <T>(parse: (value: unknown) => T) => z.unknown().transform((value) => parse(value));

/** The value schemas every operator surface uses: admin bodies wrap them in objects, CLI arguments pass through them. */
export const values = Object.freeze({
  quota: via((value) => parseQuotaInput(value)),
  blockPrice: via((value) => parseQuotaInput(value, 'block price')),
  provider: via(parseProviderInput),
  date: via(parseDateInput),
  credits: via(parseCredits),
  kind: via(parseQuotaKindName),
  user: via((value) => assertName('user', value)),
  org: via((value) => assertName('org', value)),
  keyName: via(parseKeyName),
  overlapSeconds: via(parseOverlapSeconds),
  units: via(parseUnits),
  month: via(parseMonth),
  frame: via(parseTimeFrame),
});

/** Admin API bodies: unknown fields are refused, so a typo is an error rather than a silent no-op. */
export const bodies = Object.freeze({
  create: z.strictObject({ name: z.unknown() }),
  quota: z.strictObject({ quota: values.quota }),
  blockPrice: z.strictObject({ block_price: values.blockPrice }),
  provider: z.strictObject({ provider: values.provider }),
  date: z.strictObject({ date: values.date }),
  enabled: z.strictObject({ enabled: z.boolean({ error: 'enabled must be a JSON boolean, true or false' }) }),
  organization: z.strictObject({ org: z.union([z.null(), values.org]) }),
  // Credit amounts are parsed by the operations themselves (values.credits), which the CLI calls too.
  credits: z.strictObject({ credits: z.unknown() }),
  optionalCredits: z.strictObject({ credits: z.unknown().optional() }),
  createKey: z.strictObject({ name: values.keyName.optional() }),
  rotateKey: z.strictObject({ newName: values.keyName.optional(), overlapSeconds: values.overlapSeconds.optional() }),
  adjustUsage: z.strictObject({ kind: values.kind, units: values.units, reason: z.string().max(200, 'reason must be at most 200 characters').optional() }),
  empty: z.strictObject({}),
});

/**
 * Parses `value` with `schema`. A parser's own typed error (bad quota, date, provider) is
 * thrown as is; a shape problem (missing or unknown field, wrong JSON type) becomes one
 * {@link InvalidInputError} naming the fields, never echoing values.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.output<S> {
  // Unknown fields first: a typo ({"qouta": 5}) should be named, not reported as a missing quota.
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  if (shape !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const unknown = Object.keys(value).filter((key) => !Object.hasOwn(shape, key));
    if (unknown.length > 0) {
      // Field names come from the client: name only short plain ones, never echo anything else.
      const named = unknown.slice(0, 3).map((key) => (/^[A-Za-z0-9_.-]{1,32}$/.test(key) ? key : '(unprintable)'));
      throw new InvalidInputError(ERROR_CODES.invalidArgument, `invalid ${what}: unknown field ${named.join(', ')}${unknown.length > 3 ? ', ...' : ''}`);
    }
  }
  if (shape !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, `invalid ${what}: expected a JSON object`);
  }
  // A value parser throws its own typed error out of safeParse (zod does not catch transforms' throws).
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.output<S>;
  const detail = result.error.issues.map((issue) => {
    const path = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.join(', ')}`;
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
  throw new InvalidInputError(ERROR_CODES.invalidArgument, `invalid ${what}: ${detail.join('; ')}`);
}

export type { DateInput, QuotaKind };

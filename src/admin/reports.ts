// Usage reports: rows of date, user, service type, metric, count and credits, streamed from a SCAN of the usage keys.
import { pipeline } from 'node:stream/promises';
import { Readable, type Writable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { daysInMonth, dayMember, dayStartMs, utcDay, yyyymm, type CalendarDay } from '../core/cycle.js';
import { ERROR_CODES, NotFoundError } from '../core/errors.js';
import { creditLedgerKey, globLiteral, orgConfigKey, usageKeyPattern, userConfigKey } from '../core/keys.js';
import { assertName } from '../core/names.js';
import { METRICS, quotaKindSpec, type Metric, type QuotaKind } from '../core/quota-kinds.js';
import type { RedisClient } from '../redis/connection.js';
import { parseDay, parseTimeFrame, TIME_FRAMES, toCredits, type TimeFrame } from './inputs.js';
import { readHash } from '../redis/accounts.js';
import { orgMembers, readSortedSets, scanBatches } from '../redis/scan.js';

/** One report row: what one user's counter recorded on one day. */
export interface ReportRow {
  /** The UTC day, `YYYY-MM-DD`. */
  readonly date: string;
  readonly user: string;
  readonly serviceType: string;
  readonly metric: Metric;
  readonly count: number;
  /**
   * Credits charged that day for that service type (budgeted org members only), reported
   * once per (date, user, service type): on the row of the kind's charged metric; 0 elsewhere.
   */
  readonly credits: number;
}

/** Whose usage a report covers: one user, every member of an org, or every user. */
export type ReportTarget = { readonly user: string } | { readonly org: string } | { readonly all: true };

/** A report request as an operator gives it; every field is checked by {@link planReport}. */
export interface ReportRequest {
  readonly target: ReportTarget;
  /** A {@link TimeFrame} name; default `30days`. */
  readonly frame?: unknown;
  /** First day (`YYYY-MM-DD` or an ISO timestamp in UTC); default: the frame ends today. */
  readonly from?: unknown;
}

/** A checked report: the target and the inclusive range of UTC days. */
export interface ReportPlan {
  readonly target: ReportTarget;
  readonly frame: TimeFrame;
  readonly first: CalendarDay;
  readonly last: CalendarDay;
}

/** The output formats of a report. */
export type ReportFormat = 'table' | 'json' | 'csv';

/** CSV column names, in order (RFC 4180 via csv-stringify, with a header line). */
export const CSV_COLUMNS = ['date', 'user', 'service_type', 'metric', 'count', 'credits'] as const;

const MS_PER_DAY = 86_400_000;
const USAGE_KEY = /^user:([^:]+):([^:]+):([a-z_]+):(\d{4})(\d{2})$/;

const isoDate = (day: CalendarDay): string =>
  `${String(day.year).padStart(4, '0')}-${String(day.month).padStart(2, '0')}-${dayMember(day.day)}`;

/** Checks a report request against `todayMs` (the clock of whoever asks). Throws typed errors, reads nothing. */
export function planReport(request: ReportRequest, todayMs: number): ReportPlan {
  const target = request.target;
  if ('user' in target) assertName('user', target.user);
  else if ('org' in target) assertName('org', target.org);
  const frame = parseTimeFrame(request.frame ?? '30days');
  const days = TIME_FRAMES[frame];
  const firstMs = request.from === undefined || request.from === null || request.from === ''
    ? dayStartMs(utcDay(todayMs)) - (days - 1) * MS_PER_DAY
    : dayStartMs(parseDay(request.from));
  return { target, frame, first: utcDay(firstMs), last: utcDay(firstMs + (days - 1) * MS_PER_DAY) };
}

/** The kind a service type belongs to (SPEC 2 naming), or `null` for a name Tollgate never writes. */
function kindOfServiceType(serviceType: string): QuotaKind | null {
  if (serviceType.startsWith('geocoder_')) return 'geocoding';
  if (serviceType.endsWith('_isolines')) return 'isolines';
  if (serviceType.startsWith('routing_')) return 'routing';
  return null;
}

/** Per `YYYYMM` in the range, the inclusive day-of-month window that belongs to it. */
function monthWindows(plan: ReportPlan): Map<string, { from: number; to: number }> {
  const windows = new Map<string, { from: number; to: number }>();
  let year = plan.first.year;
  let month = plan.first.month;
  for (;;) {
    const isFirst = year === plan.first.year && month === plan.first.month;
    const isLast = year === plan.last.year && month === plan.last.month;
    windows.set(yyyymm(year, month), { from: isFirst ? plan.first.day : 1, to: isLast ? plan.last.day : daysInMonth(year, month) });
    if (isLast) return windows;
    month += 1;
    if (month > 12) {
      month = 1;
      year += 1;
    }
  }
}

async function assertExists(client: RedisClient, key: string, what: 'user' | 'org'): Promise<void> {
  if (Object.keys(await readHash(client, key)).length === 0) {
    throw new NotFoundError(what === 'user' ? ERROR_CODES.unknownUser : ERROR_CODES.unknownOrg, `unknown ${what}: no ${key} hash`);
  }
}

/**
 * Streams the rows of a report. Keys are walked with SCAN in batches of about 1000 and each
 * batch is read with one pipeline, so memory holds one batch (plus, for an org report, the
 * set of member names). Rows come in SCAN order, each key's days ascending; sort downstream
 * if order matters. Throws {@link NotFoundError} for an unknown user or org before any row.
 */
export async function* reportRows(client: RedisClient, plan: ReportPlan): AsyncGenerator<ReportRow> {
  const target = plan.target;
  let pattern = usageKeyPattern('user');
  let members: Set<string> | null = null;
  if ('user' in target) {
    await assertExists(client, userConfigKey(target.user), 'user');
    pattern = usageKeyPattern('user', globLiteral(target.user));
  } else if ('org' in target) {
    await assertExists(client, orgConfigKey(target.org), 'org');
    members = new Set();
    for await (const member of orgMembers(client, target.org)) members.add(member);
  }
  const windows = monthWindows(plan);

  for await (const batch of scanBatches(client, pattern)) {
    const reads: Array<{ user: string; serviceType: string; metric: Metric; month: string; charged: boolean }> = [];
    const keys: string[] = [];
    for (const key of batch.keys) {
      const match = USAGE_KEY.exec(key);
      if (match === null) continue;
      const [, user, serviceType, metricName, year, month] = match as unknown as [string, string, string, string, string, string];
      const window = windows.get(`${year}${month}`);
      if (window === undefined || !(METRICS as readonly string[]).includes(metricName)) continue;
      if (members !== null && !members.has(user)) continue;
      const metric = metricName as Metric;
      const kind = kindOfServiceType(serviceType);
      const charged = kind !== null && quotaKindSpec(kind).chargedMetric === metric;
      reads.push({ user, serviceType, metric, month: `${year}${month}`, charged });
      keys.push(key);
      if (charged) keys.push(creditLedgerKey({ type: 'user', name: user }, serviceType, `${year}${month}`));
    }
    if (reads.length === 0) continue;
    // A key of another type under user:* is not a usage counter: it reads as empty.
    const values = await readSortedSets(batch.node, keys);
    let index = 0;
    for (const read of reads) {
      const usage = values[index++]!;
      const credits = read.charged ? new Map(values[index++]!) : null;
      const window = windows.get(read.month)!;
      const days = new Map(usage);
      for (const day of credits?.keys() ?? []) if (!days.has(day)) days.set(day, 0);
      const sorted = [...days.entries()].filter(([day]) => day >= window.from && day <= window.to).sort((a, b) => a[0] - b[0]);
      for (const [day, count] of sorted) {
        const millicredits = credits?.get(day) ?? 0;
        if (count === 0 && millicredits === 0) continue;
        yield {
          date: `${read.month.slice(0, 4)}-${read.month.slice(4)}-${dayMember(day)}`,
          user: read.user,
          serviceType: read.serviceType,
          metric: read.metric,
          count,
          credits: toCredits(millicredits),
        };
      }
    }
  }
}

/** The first and last day of a plan as `YYYY-MM-DD`. */
export function planDates(plan: ReportPlan): { from: string; to: string } {
  return { from: isoDate(plan.first), to: isoDate(plan.last) };
}

/** A row as CSV cells, in {@link CSV_COLUMNS} order. */
export function csvRecord(row: ReportRow): Array<string | number> {
  return [row.date, row.user, row.serviceType, row.metric, row.count, row.credits];
}

/** Writes `chunk` and waits for `drain` when the destination's buffer is full (bounded memory). */
async function writeWithBackpressure(out: Writable, chunk: string): Promise<void> {
  if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/**
 * Writes report rows to `out` as CSV (with header), a JSON array, or an aligned text table,
 * streaming row by row. `out` is not ended, so it may be process.stdout.
 */
export async function writeReport(rows: AsyncIterable<ReportRow>, format: ReportFormat, out: Writable): Promise<number> {
  let count = 0;
  const counted = async function* (): AsyncGenerator<ReportRow> {
    for await (const row of rows) {
      count += 1;
      yield row;
    }
  };
  if (format === 'csv') {
    const records = async function* (): AsyncGenerator<Array<string | number>> {
      for await (const row of counted()) yield csvRecord(row);
    };
    await pipeline(
      Readable.from(records(), { objectMode: true }),
      stringify({ header: true, columns: [...CSV_COLUMNS] }),
      out,
      { end: false },
    );
    return count;
  }
  if (format === 'json') {
    let first = true;
    await writeWithBackpressure(out, '[');
    for await (const row of counted()) {
      await writeWithBackpressure(out, `${first ? '\n' : ',\n'}${JSON.stringify(row)}`);
      first = false;
    }
    await writeWithBackpressure(out, first ? ']\n' : '\n]\n');
    return count;
  }
  const widths = [10, 20, 20, 18, 10, 12];
  const line = (cells: Array<string | number>): string =>
    `${cells.map((cell, i) => (typeof cell === 'number' ? String(cell).padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ')}\n`;
  await writeWithBackpressure(out, line([...CSV_COLUMNS]));
  for await (const row of counted()) await writeWithBackpressure(out, line(csvRecord(row)));
  return count;
}

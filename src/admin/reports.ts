// Usage reports: rows of date, scope, owner, service type, metric, count and credits, from a SCAN of the usage keys.
import { pipeline } from 'node:stream/promises';
import { Readable, type Writable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { parseDateInput, parseOrganization, parsePeriodEndDay, PERIOD_END_DATE_FIELD, type RawHash } from '../core/config.js';
import { billingCycle, daysInMonth, dayMember, dayStartMs, utcDay, yyyymm, type CalendarDay } from '../core/cycle.js';
import { ConflictError, ERROR_CODES, InvalidInputError, NotFoundError } from '../core/errors.js';
import type { Owner, OwnerType } from '../core/keys.js';
import { CARTO_LAYOUT, type KeyLayout } from '../core/layout.js';
import { assertName } from '../core/names.js';
import { METRICS, quotaKindSpec, type Metric, type QuotaKind } from '../core/quota-kinds.js';
import type { RedisClient } from '../redis/connection.js';
import { parseMonth, parseTimeFrame, TIME_FRAMES, toCredits, type TimeFrame } from './inputs.js';
import { readHash } from '../redis/accounts.js';
import { homeUsagePattern, readHome } from '../redis/homes.js';
import { orgMembers, readSortedSets, scanBatches, slotAssignment } from '../redis/scan.js';

/** A report metric: a CARTO counter, or `used`, the day's counted units (what the quota and the credits are about). */
export type ReportMetric = Metric | 'used';

/** One report row: what one owner's counter recorded on one day, or a totals row (`date` = `total`). */
export interface ReportRow {
  /** The UTC day, `YYYY-MM-DD`, or `total` on a totals row. */
  readonly date: string;
  /** `user`: the user's own keys; `org`: the org's pooled keys. */
  readonly scope: OwnerType;
  /** The user or org name; `*` on a totals row covering several. */
  readonly owner: string;
  readonly serviceType: string;
  readonly metric: ReportMetric;
  readonly count: number;
  /**
   * Credits charged that day for that service type (budgeted org members and their org). Only
   * `used` rows carry them: credits pay for every counted unit, success and empty alike, so
   * they sit beside the sum of both, never on one metric's row. 0 on every other row.
   */
  readonly credits: number;
}

/** Whose usage a report covers: one user, an org (its pool and its members), or every user. */
export type ReportTarget = { readonly user: string } | { readonly org: string } | { readonly all: true };

/** A report request as an operator gives it; every field is checked by {@link planReport}. */
export interface ReportRequest {
  readonly target: ReportTarget;
  /** A {@link TimeFrame} name; default `30days`, or `cycle` when `month` is given. */
  readonly frame?: unknown;
  /** First day (any form of core/config's parseDateInput); default: the frame ends today. Not with `cycle`. */
  readonly from?: unknown;
  /** `YYYYMM`: the billing cycle that starts in that month (frame `cycle` only). */
  readonly month?: unknown;
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
export const CSV_COLUMNS = ['date', 'scope', 'owner', 'service_type', 'metric', 'count', 'credits'] as const;

const MS_PER_DAY = 86_400_000;

const isoDate = (day: CalendarDay): string =>
  `${String(day.year).padStart(4, '0')}-${String(day.month).padStart(2, '0')}-${dayMember(day.day)}`;

const previousDay = (day: CalendarDay): CalendarDay => utcDay(dayStartMs(day) - MS_PER_DAY);

/**
 * Checks a report request against `todayMs` (the clock of whoever asks) and, for the `cycle`
 * frame, the target's billing anchor day (`null`: calendar months). Throws typed errors, reads nothing.
 */
export function planReport(request: ReportRequest, todayMs: number, anchorDay: number | null = null): ReportPlan {
  const target = request.target;
  if ('user' in target) assertName('user', target.user);
  else if ('org' in target) assertName('org', target.org);
  const hasMonth = request.month !== undefined && request.month !== null && request.month !== '';
  const hasFrom = request.from !== undefined && request.from !== null && request.from !== '';
  const frame = parseTimeFrame(request.frame ?? (hasMonth ? 'cycle' : '30days'));
  if (frame === 'cycle') {
    if (hasFrom) throw new InvalidInputError(ERROR_CODES.invalidArgument, 'the cycle frame takes --month, not --from');
    let start: CalendarDay;
    let nextStart: CalendarDay;
    if (hasMonth) {
      const { year, month } = parseMonth(request.month);
      start = { year, month, day: Math.min(anchorDay ?? 1, daysInMonth(year, month)) };
      const next = month === 12 ? { year: year + 1, month: 1 } : { year, month: month + 1 };
      nextStart = { ...next, day: Math.min(anchorDay ?? 1, daysInMonth(next.year, next.month)) };
    } else {
      ({ start, nextStart } = billingCycle(utcDay(todayMs), anchorDay));
    }
    return { target, frame, first: start, last: previousDay(nextStart) };
  }
  if (hasMonth) throw new InvalidInputError(ERROR_CODES.invalidArgument, '--month goes with the cycle frame only');
  const days = TIME_FRAMES[frame];
  const firstMs = hasFrom ? dayStartMs(parseDateInput(request.from).day) : dayStartMs(utcDay(todayMs)) - (days - 1) * MS_PER_DAY;
  return { target, frame, first: utcDay(firstMs), last: utcDay(firstMs + (days - 1) * MS_PER_DAY) };
}

async function existingHash(client: RedisClient, key: string, what: 'user' | 'org'): Promise<RawHash> {
  const hash = await readHash(client, key);
  if (Object.keys(hash).length === 0) {
    throw new NotFoundError(what === 'user' ? ERROR_CODES.unknownUser : ERROR_CODES.unknownOrg, `unknown ${what}: no ${key} hash`);
  }
  return hash;
}

/**
 * The billing anchor day a `cycle` report of `target` uses: a user's is its org's
 * `period_end_date` where the org has one, else its own (SPEC 1); an org's is its own;
 * `null` (calendar months) for every user at once, whose cycles differ.
 */
export async function reportAnchorDay(client: RedisClient, target: ReportTarget, layout: KeyLayout = CARTO_LAYOUT): Promise<number | null> {
  if ('all' in target) return null;
  if ('org' in target) {
    const key = layout.orgConfigKey(assertName('org', target.org));
    return parsePeriodEndDay(key, (await existingHash(client, key, 'org'))[PERIOD_END_DATE_FIELD]);
  }
  const home = await readHome(client, layout, assertName('user', target.user));
  const userKey = home.key;
  const userHash = home.hash;
  const org = home.org;
  if (org !== null) {
    const orgKey = layout.orgConfigKey(org);
    const orgHash = await readHash(client, orgKey);
    if (Object.hasOwn(orgHash, PERIOD_END_DATE_FIELD)) return parsePeriodEndDay(orgKey, orgHash[PERIOD_END_DATE_FIELD]);
  }
  return parsePeriodEndDay(userKey, userHash[PERIOD_END_DATE_FIELD]);
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

/** Options of {@link reportRows}. */
export interface ReportRowsOptions {
  /** Stops the SCAN at the next batch once aborted (an HTTP client that went away). */
  readonly signal?: AbortSignal;
  /** Where the counters are; default the CARTO layout. */
  readonly layout?: KeyLayout;
}

/** One SCAN to walk: the keys of one owner type, kept when `keep` says so. */
interface Walk {
  readonly pattern: string;
  /** `home`: the org whose slot holds a user's counters (cluster layout), else `null`. */
  readonly keep: (owner: Owner, home: string | null) => boolean;
}

/**
 * Streams the rows of a report in SCAN order (each key's days ascending). An org report is its
 * pool, read from the org's own keys (`scope: org`, ex-members' use included, as the quota
 * sees it), then its current members' own keys (`scope: user`). Keys are walked with SCAN in
 * batches of about 1000 and each batch is read with one pipeline, so memory holds one batch.
 * Throws {@link NotFoundError} for an unknown user or org before any row.
 */
export async function* reportRows(client: RedisClient, plan: ReportPlan, options: ReportRowsOptions = {}): AsyncGenerator<ReportRow> {
  const target = plan.target;
  const layout = options.layout ?? CARTO_LAYOUT;
  const cluster = layout.name === 'cluster';
  // On a Redis Cluster the walk goes master by master: a slot moving meanwhile could hide keys or show them twice.
  const slots = await slotAssignment(client);
  if (slots?.moving === true) {
    throw new ConflictError(ERROR_CODES.concurrentChange, 'a hash slot is being moved between masters: a report now could miss keys or count them twice; run it once the reshard is done');
  }
  const walks: Walk[] = [];
  if ('user' in target) {
    await readHome(client, layout, target.user);
    // Cluster layout: the user's own counters in every home it had (rows of one day are summed by sortedRows).
    for (const pattern of layout.usageKeyPatterns('user', target.user)) {
      walks.push({ pattern, keep: (owner) => owner.type === 'user' && owner.name === target.user });
    }
  } else if ('org' in target) {
    await existingHash(client, layout.orgConfigKey(target.org), 'org');
    const members = new Set<string>();
    for await (const member of orgMembers(client, target.org, layout)) members.add(member);
    for (const pattern of layout.usageKeyPatterns('org', target.org)) {
      walks.push({ pattern, keep: (owner) => owner.type === 'org' && owner.name === target.org });
    }
    if (members.size > 0) {
      // Cluster layout: the members' own counters made in this org, all in its slot.
      const pattern = cluster ? homeUsagePattern(layout, '*', target.org, '*') : layout.usageKeyPatterns('user')[0]!;
      walks.push({ pattern, keep: (owner, home) => owner.type === 'user' && members.has(owner.name) && (!cluster || home === target.org) });
    }
  } else {
    for (const pattern of layout.usageKeyPatterns('user')) walks.push({ pattern, keep: (owner) => owner.type === 'user' });
  }
  const windows = monthWindows(plan);

  for (const walk of walks) {
    for await (const batch of scanBatches(client, walk.pattern)) {
      if (options.signal?.aborted === true) return;
      const reads: Array<{ owner: Owner; serviceType: string; metric: Metric; month: string; at: number; empty: number; ledger: number }> = [];
      const keys: string[] = [];
      // Each key is read once per batch, however many rows need it (an empty_responses key
      // is both its own row and part of the day's `used` row).
      const positions = new Map<string, number>();
      const position = (key: string): number => {
        let at = positions.get(key);
        if (at === undefined) {
          at = keys.push(key) - 1;
          positions.set(key, at);
        }
        return at;
      };
      for (const key of batch.keys) {
        const parsed = layout.parseUsageKey(key);
        if (parsed === null || !walk.keep(parsed.owner, parsed.home) || !windows.has(parsed.yyyymm)) continue;
        const kind = kindOfServiceType(parsed.serviceType);
        const charged = kind !== null && quotaKindSpec(kind).chargedMetric === parsed.metric;
        reads.push({
          owner: parsed.owner,
          serviceType: parsed.serviceType,
          metric: parsed.metric,
          month: parsed.yyyymm,
          at: position(key),
          // The `used` row needs the empty units and the credits of the same owner, service type and month.
          empty: charged ? position(layout.usageKey(parsed.owner, parsed.home, parsed.serviceType, 'empty_responses', parsed.yyyymm)) : -1,
          // Cluster layout: ledgers live in an org's slot; a user's counters outside any org have none.
          ledger: charged && !(cluster && parsed.home === null) ? position(layout.creditLedgerKey(parsed.owner, parsed.home ?? '', parsed.serviceType, parsed.yyyymm)) : -1,
        });
      }
      if (reads.length === 0) continue;
      // A key of another type under user:* is not a usage counter: it reads as empty.
      const values = await readSortedSets(batch.node, keys);
      for (const read of reads) {
        const window = windows.get(read.month)!;
        const inWindow = (day: number): boolean => day >= window.from && day <= window.to;
        const date = (day: number): string => `${read.month.slice(0, 4)}-${read.month.slice(4)}-${dayMember(day)}`;
        const row = (day: number, metric: ReportMetric, count: number, millicredits: number): ReportRow => ({
          date: date(day),
          scope: read.owner.type,
          owner: read.owner.name,
          serviceType: read.serviceType,
          metric,
          count,
          credits: toCredits(millicredits),
        });
        const usage = values[read.at]!;
        for (const [day, count] of [...usage].sort((a, b) => a[0] - b[0])) {
          if (count !== 0 && inWindow(day)) yield row(day, read.metric, count, 0);
        }
        if (read.empty < 0) continue;
        const empty = new Map(values[read.empty]!);
        const credits = new Map(read.ledger < 0 ? [] : values[read.ledger]!);
        const charged = new Map(usage);
        const days = new Set([...charged.keys(), ...empty.keys(), ...credits.keys()]);
        for (const day of [...days].filter(inWindow).sort((a, b) => a - b)) {
          const used = (charged.get(day) ?? 0) + (empty.get(day) ?? 0);
          const millicredits = credits.get(day) ?? 0;
          if (used !== 0 || millicredits !== 0) yield row(day, 'used', used, millicredits);
        }
      }
    }
  }
  if (slots !== null && (await slotAssignment(client))?.fingerprint !== slots.fingerprint) {
    throw new ConflictError(ERROR_CODES.concurrentChange, 'hash slots moved between masters while the report was read: it could miss keys or count them twice; run it again');
  }
}

const METRIC_ORDER: readonly ReportMetric[] = [...METRICS, 'used'];

/** Report order: pool before members, then owner, date, service type, metric (CARTO's metric order, `used` last). */
export function compareRows(a: ReportRow, b: ReportRow): number {
  const text = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  return (
    text(a.scope, b.scope) || // "org" < "user": pool rows first
    text(a.owner, b.owner) ||
    text(a.date, b.date) ||
    text(a.serviceType, b.serviceType) ||
    METRIC_ORDER.indexOf(a.metric) - METRIC_ORDER.indexOf(b.metric)
  );
}

/**
 * All of `rows`, sorted by {@link compareRows}, rows of the same day, scope, owner, service type
 * and metric summed into one (in the cluster layout a user's counters of one day can sit in two
 * homes, the org it left and the one it joined). Holds the whole report in memory: `--unsorted`
 * streams instead, one row per key.
 */
export async function* sortedRows(rows: AsyncIterable<ReportRow>): AsyncGenerator<ReportRow> {
  const all: ReportRow[] = [];
  for await (const row of rows) all.push(row);
  all.sort(compareRows);
  const merged: ReportRow[] = [];
  for (const row of all) {
    const last = merged[merged.length - 1];
    if (last !== undefined && compareRows(last, row) === 0) {
      const millicredits = Math.round(last.credits * 1000) + Math.round(row.credits * 1000);
      merged[merged.length - 1] = { ...last, count: last.count + row.count, credits: toCredits(millicredits) };
    } else merged.push(row);
  }
  // Rows only merge when a day sits in two homes; a refund there can make them cancel out.
  yield* merged.filter((row) => row.count !== 0 || row.credits !== 0);
}

/**
 * `rows`, then one totals row (`date` = `total`) per scope, service type and metric, in
 * {@link compareRows} order. `owner` is the owner's name when one owner made the whole total,
 * else `*`. Memory holds one entry per (scope, service type, metric).
 */
export async function* withTotals(rows: AsyncIterable<ReportRow>): AsyncGenerator<ReportRow> {
  const totals = new Map<string, { row: ReportRow; count: number; millicredits: number }>();
  for await (const row of rows) {
    yield row;
    const key = `${row.scope}|${row.serviceType}|${row.metric}`;
    const total = totals.get(key);
    // Credits are summed as integer millicredits so many rows add up exactly.
    const millicredits = Math.round(row.credits * 1000);
    if (total === undefined) totals.set(key, { row, count: row.count, millicredits });
    else {
      total.count += row.count;
      total.millicredits += millicredits;
      if (total.row.owner !== row.owner) total.row = { ...total.row, owner: '*' };
    }
  }
  const out = [...totals.values()].map(({ row, count, millicredits }) => ({ ...row, date: 'total', count, credits: toCredits(millicredits) }));
  yield* out.sort(compareRows);
}

/** The first and last day of a plan as `YYYY-MM-DD`. */
export function planDates(plan: ReportPlan): { from: string; to: string } {
  return { from: isoDate(plan.first), to: isoDate(plan.last) };
}

/** A row as CSV cells, in {@link CSV_COLUMNS} order. */
export function csvRecord(row: ReportRow): Array<string | number> {
  return [row.date, row.scope, row.owner, row.serviceType, row.metric, row.count, row.credits];
}

/** The destination went away (a closed pipe, a disconnected HTTP client): stop producing rows. */
export class OutputClosedError extends Error {
  constructor(cause?: unknown) {
    super('output closed', { cause });
    this.name = 'OutputClosedError';
  }
}

/**
 * Writes `chunk` and waits for `drain` when the destination's buffer is full (bounded memory).
 * Rejects with {@link OutputClosedError} when the destination errors (EPIPE) or closes first,
 * so a reader that left stops the report instead of leaving it waiting for a drain that never comes.
 */
async function writeWithBackpressure(out: Writable, chunk: string): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new OutputClosedError();
  if (out.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (error?: unknown): void => {
      out.off('drain', onDrain).off('error', onError).off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = (): void => done();
    const onError = (error: unknown): void => done(new OutputClosedError(error));
    const onClose = (): void => done(new OutputClosedError());
    out.once('drain', onDrain).once('error', onError).once('close', onClose);
  });
}

/**
 * Writes report rows to `out` as CSV (with header), a JSON array, or an aligned text table,
 * streaming row by row; answers how many rows were written (totals rows included). `out` is
 * not ended, so it may be process.stdout.
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
    try {
      await pipeline(Readable.from(records(), { objectMode: true }), stringify({ header: true, columns: [...CSV_COLUMNS] }), out, { end: false });
    } catch (error) {
      if (out.destroyed || (error as { code?: unknown }).code === 'EPIPE' || (error as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE') {
        throw new OutputClosedError(error);
      }
      throw error;
    }
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
  const widths = [10, 5, 20, 20, 18, 10, 10];
  const line = (cells: Array<string | number>): string =>
    `${cells.map((cell, i) => (typeof cell === 'number' ? String(cell).padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()}\n`;
  await writeWithBackpressure(out, line([...CSV_COLUMNS]));
  for await (const row of counted()) await writeWithBackpressure(out, line(csvRecord(row)));
  return count;
}

// Usage reports against a real Redis: time frames, month boundaries, org and all-user scans, credits, CSV round trips.
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { planReport, reportRows, writeReport, type ReportRow } from '../../src/admin/reports.js';
import { runCli } from '../../src/cli/program.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { sink } from '../helpers/streams.js';

const redis = useTestRedis();
const fresh = useNames(redis.client);

async function collect(rows: AsyncIterable<ReportRow>): Promise<ReportRow[]> {
  const all: ReportRow[] = [];
  for await (const row of rows) all.push(row);
  return all;
}

const byKey = (a: ReportRow, b: ReportRow): number =>
  `${a.owner}|${a.date}|${a.serviceType}|${a.metric}`.localeCompare(`${b.owner}|${b.date}|${b.serviceType}|${b.metric}`);

describe('report time frames', () => {
  const today = Date.UTC(2026, 2, 3, 15, 0); // 2026-03-03
  it.each([
    ['today', undefined, '2026-03-03', '2026-03-03'],
    ['week', undefined, '2026-02-25', '2026-03-03'],
    ['14days', undefined, '2026-02-18', '2026-03-03'],
    ['30days', undefined, '2026-02-02', '2026-03-03'],
    ['60days', undefined, '2026-01-03', '2026-03-03'],
    ['90days', undefined, '2025-12-04', '2026-03-03'],
    ['6months', undefined, '2025-09-05', '2026-03-03'],
    ['year', undefined, '2025-03-04', '2026-03-03'],
    ['week', '2024-02-26', '2024-02-26', '2024-03-03'],
    ['today', '2026-01-31T23:59:59Z', '2026-01-31', '2026-01-31'],
  ])('%s from %s covers %s to %s', (frame, from, first, last) => {
    const plan = planReport({ target: { all: true }, frame, from }, today);
    const iso = (d: { year: number; month: number; day: number }): string =>
      `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
    expect([iso(plan.first), iso(plan.last)]).toEqual([first, last]);
  });

  it.each([['3weeks'], [''], ['Week']])('rejects the time frame %j', (frame) => {
    expect(() => planReport({ target: { all: true }, frame }, today)).toThrow(
      expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_TIME_FRAME' }),
    );
  });
  it.each([['2026-02-30'], ['2026-1-5'], ['05/01/2026'], ['2026-01-01T25:00:00Z'], ['2026-01-01T10:00:00+02:00']])(
    'rejects the start date %j',
    (from) => {
      expect(() => planReport({ target: { all: true }, from }, today)).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_DATE' }));
    },
  );
});

describe('report rows', () => {
  it('reports usage and credits written by Tollgate across a month boundary', async () => {
    const org = fresh('rep-o');
    const user = fresh('rep-u');
    await writeOrg(redis.client(), org, {
      geocoding_quota: '1000',
      credits_enabled: 'true',
      credits_balance_millicredits: '100000',
    });
    await writeUser(redis.client(), user, { organization: org });
    let now = Date.UTC(2026, 0, 31, 12);
    const tollgate = new Tollgate({ redis: redis.client(), clock: () => now });
    const jan = await tollgate.consume({ user, kind: 'geocoding', cost: 5 });
    await tollgate.settle(jan.reservation!, { success: 3, empty: 1, failed: 1 });
    now = Date.UTC(2026, 1, 1, 9);
    await tollgate.consume({ user, kind: 'geocoding', cost: 2 });
    now = Date.UTC(2026, 1, 3, 9); // outside the frame below

    await tollgate.consume({ user, kind: 'geocoding', cost: 9 });
    const plan = planReport({ target: { user }, frame: 'today', from: '2026-01-31' }, now);
    const janRows = await collect(reportRows(redis.client(), plan));
    expect(janRows.sort(byKey)).toEqual(
      [
        { metric: 'empty_responses', count: 1, credits: 0 },
        { metric: 'failed_responses', count: 1, credits: 0 },
        { metric: 'success_responses', count: 3, credits: 0 },
        { metric: 'total_requests', count: 5, credits: 0 },
        // 3 success + 1 empty counted; 4 charged units x 0.04 after refunding the failed one.
        { metric: 'used', count: 4, credits: 0.16 },
      ].map((r) => ({ date: '2026-01-31', scope: 'user', owner: user, serviceType: 'geocoder_here', ...r })),
    );

    const twoDays = planReport({ target: { user }, frame: 'week', from: '2026-01-27' }, now); // to 2026-02-02
    const rows = await collect(reportRows(redis.client(), twoDays));
    expect(rows.filter((r) => r.metric === 'used').map((r) => [r.date, r.count, r.credits]).sort()).toEqual([
      ['2026-01-31', 4, 0.16],
      ['2026-02-01', 2, 0.08],
    ]);
    // The default frame ends today on the given clock: the 3 Feb consume is in, Jan is out of "today".
    const todayRows = await collect(reportRows(redis.client(), planReport({ target: { user }, frame: 'today' }, now)));
    expect(todayRows.map((r) => [r.date, r.metric, r.count])).toContainEqual(['2026-02-03', 'success_responses', 9]);
    expect(todayRows.every((r) => r.date === '2026-02-03')).toBe(true);
  });

  it('an org report covers its members only; an all-users report walks every batch of the SCAN', async () => {
    const org = fresh('rep-org');
    const members = [fresh('rep-m'), fresh('rep-m')];
    const outsider = fresh('rep-x');
    await writeOrg(redis.client(), org, { geocoding_quota: '10' });
    for (const m of members) await writeUser(redis.client(), m, { organization: org });
    await writeUser(redis.client(), outsider, { geocoding_quota: '1' });
    for (const u of [...members, outsider]) {
      await redis.client().zadd(`user:${u}:routing_mapzen:success_responses:202512`, 4, '31');
    }
    const plan = planReport({ target: { org }, frame: 'week', from: '2025-12-30' }, Date.now());
    const rows = await collect(reportRows(redis.client(), plan));
    expect(rows.filter((r) => r.metric === 'success_responses').map((r) => r.owner).sort()).toEqual([...members].sort());

    // 2,500 users: more keys than one SCAN batch holds.
    const prefix = fresh('rep-many');
    const pipeline = redis.client().pipeline();
    for (let i = 0; i < 2500; i += 1) {
      pipeline.zadd(`user:${prefix}-${i}:geocoder_here:success_responses:202512`, i + 1, '15');
      pipeline.zadd(`user:${prefix}-${i}:geocoder_here:total_requests:202511`, 1, '15'); // outside the frame
    }
    await pipeline.exec();
    const all = planReport({ target: { all: true }, frame: 'today', from: '2025-12-15' }, Date.now());
    const mine = (await collect(reportRows(redis.client(), all))).filter((r) => r.owner.startsWith(`${prefix}-`) && r.metric !== 'used');
    expect(mine).toHaveLength(2500);
    expect(mine.reduce((sum, r) => sum + r.count, 0)).toBe((2500 * 2501) / 2);
  });

  it('refuses an unknown user or org before any row', async () => {
    const plan = planReport({ target: { user: 'nobody-rep-1' }, frame: 'week' }, Date.now());
    await expect(collect(reportRows(redis.client(), plan))).rejects.toMatchObject({ code: 'ERR_TOLLGATE_UNKNOWN_USER' });
    const orgPlan = planReport({ target: { org: 'nobody-rep-2' }, frame: 'week' }, Date.now());
    await expect(collect(reportRows(redis.client(), orgPlan))).rejects.toMatchObject({ code: 'ERR_TOLLGATE_UNKNOWN_ORG' });
  });
});

describe('report output', () => {
  it('CSV parses back to the same rows as JSON, quoting included', async () => {
    const user = fresh('rep-csv');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    // A provider with a comma or quote cannot exist (providers are plain words), so exercise quoting through the writer.
    const tricky: ReportRow[] = [
      { date: '2026-01-01', scope: 'user', owner: 'a"b', serviceType: 'geocoder_x,y', metric: 'success_responses', count: 3, credits: 0.12 },
      { date: '2026-01-02', scope: 'org', owner: 'line\nbreak', serviceType: 'routing_z', metric: 'total_requests', count: 0, credits: 1.5 },
    ];
    const out = sink();
    await writeReport((async function* () { yield* tricky; })(), 'csv', out.stream);
    expect(out.text().split('\r\n')[0] ?? out.text().split('\n')[0]).toMatch(/^date,scope,owner,service_type,metric,count,credits/);
    const parsed = parse(out.text(), { columns: true }) as Array<Record<string, string>>;
    expect(
      parsed.map((r) => ({ ...r, count: Number(r.count), credits: Number(r.credits) })),
    ).toEqual(tricky.map(({ serviceType, ...r }) => ({ ...r, service_type: serviceType })));

    await redis.client().zadd(`user:${user}:geocoder_here:success_responses:202601`, 5, '10', 6, '11');
    await redis.client().zadd(`user:${user}:here_isolines:isolines_generated:202601`, 2, '11');
    const run = async (...args: string[]): Promise<string> => {
      const stdout = sink();
      const stderr = sink();
      const code = await runCli(args, { stdout: stdout.stream, stderr: stderr.stream, env: { REDIS_URL: redis.url() } });
      expect([code, stderr.text()]).toEqual([0, '']);
      return stdout.text();
    };
    const json = JSON.parse(await run('report', '--user', user, '--from', '2026-01-10', '--frame', 'week', '--format', 'json')) as ReportRow[];
    const csv = parse(await run('report', '--user', user, '--from', '2026-01-10', '--frame', 'week', '--format', 'csv'), {
      columns: true,
    }) as Array<Record<string, string>>;
    // 3 counter rows, 2 'used' rows (one per charged key and day... 10 and 11 for geocoding, 11 for isolines), 4 totals.
    expect(json.filter((r) => r.date !== 'total')).toHaveLength(6);
    expect(csv).toEqual(
      json.map((r) => ({
        date: r.date,
        scope: r.scope,
        owner: r.owner,
        service_type: r.serviceType,
        metric: r.metric,
        count: String(r.count),
        credits: String(r.credits),
      })),
    );
    const table = await run('report', '--user', user, '--from', '2026-01-10', '--frame', 'week');
    expect(table).toMatch(/2026-01-11\s+user\s+\S+\s+here_isolines\s+isolines_generated\s+2\s+0/);
    expect(table).toContain('10 rows, 2026-01-10 to 2026-01-16 (UTC)');
  });
});

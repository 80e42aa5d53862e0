// Issue 11 items 5-7: org reports (pool vs members), totals, the cycle frame, sorting, EPIPE, and a client that leaves mid-report.
import { spawn } from 'node:child_process';
import { createServer, Socket, type AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createAdminRouter } from '../../src/admin/router.js';
import { planDates, planReport, reportRows, sortedRows, withTotals, type ReportRow } from '../../src/admin/reports.js';
import { runCli } from '../../src/cli/program.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { sink } from '../helpers/streams.js';
import { serve } from '../http/support.js';

const redis = useTestRedis();
const fresh = useNames(redis.client);

async function collect(rows: AsyncIterable<ReportRow>): Promise<ReportRow[]> {
  const all: ReportRow[] = [];
  for await (const row of rows) all.push(row);
  return all;
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runCli(args, { stdout: out.stream, stderr: err.stream, env: { REDIS_URL: redis.url() } });
  return { code, out: out.text(), err: err.text() };
}

describe('org reports (item 5)', () => {
  it("report the pool from the org keys (ex-members included) and members from their own keys, and say which", async () => {
    const org = fresh('po-o');
    const alice = fresh('po-a');
    const bob = fresh('po-b');
    await writeOrg(redis.client(), org, { geocoding_quota: '100' });
    for (const user of [alice, bob]) await writeUser(redis.client(), user, { organization: org });
    const tollgate = new Tollgate({ redis: redis.client() });
    await tollgate.consume({ user: alice, kind: 'geocoding', cost: 20 });
    await tollgate.consume({ user: bob, kind: 'geocoding', cost: 5 });
    expect((await cli('user', 'leave-org', bob)).code).toBe(0);

    const plan = planReport({ target: { org }, frame: 'today' }, Date.now());
    const rows = await collect(withTotals(sortedRows(reportRows(redis.client(), plan))));
    const totals = rows.filter((row) => row.date === 'total' && row.metric === 'used');
    expect(totals.map((row) => [row.scope, row.owner, row.count])).toEqual([
      ['org', org, 25], // what the quota sees: bob's 5 stay in the pool
      ['user', alice, 20], // current members' own keys
    ]);
    // Pool rows come first, then members; bob, who left, is not listed as a member.
    expect(rows.filter((row) => row.date !== 'total').map((row) => row.scope)).toEqual([
      ...rows.filter((row) => row.scope === 'org' && row.date !== 'total').map(() => 'org'),
      ...rows.filter((row) => row.scope === 'user' && row.date !== 'total').map(() => 'user'),
    ]);
    expect(rows.some((row) => row.owner === bob)).toBe(false);
    expect((await tollgate.usage({ org, kind: 'geocoding' })).used).toBe(25);
  });
});

describe('totals, cycles, order, credits (item 6)', () => {
  it('the cycle frame follows period_end_date; --month picks the cycle that starts in that month', () => {
    const today = Date.UTC(2026, 2, 3, 15); // 2026-03-03
    const dates = (request: Parameters<typeof planReport>[0], anchor: number | null): [string, string] => {
      const { from, to } = planDates(planReport(request, today, anchor));
      return [from, to];
    };
    expect(dates({ target: { all: true }, frame: 'cycle' }, 15)).toEqual(['2026-02-15', '2026-03-14']);
    expect(dates({ target: { all: true }, frame: 'cycle' }, null)).toEqual(['2026-03-01', '2026-03-31']);
    expect(dates({ target: { all: true }, frame: 'cycle' }, 3)).toEqual(['2026-03-03', '2026-04-02']);
    expect(dates({ target: { all: true }, month: '202602' }, 31)).toEqual(['2026-02-28', '2026-03-30']);
    expect(dates({ target: { all: true }, frame: 'cycle', month: '202512' }, 10)).toEqual(['2025-12-10', '2026-01-09']);
    expect(() => planReport({ target: { all: true }, frame: 'cycle', from: '2026-01-01' }, today)).toThrow(/takes --month/);
  });

  it('a CLI report over a billing month: sorted by owner and date, totals last, credits only on used rows', async () => {
    const org = fresh('cy-o');
    const users = [fresh('cy-b'), fresh('cy-a')];
    await writeOrg(redis.client(), org, { geocoding_quota: '1000', period_end_date: '2026-01-10 00:00:00 UTC', credits_enabled: 'true', credits_balance_millicredits: '100000' });
    for (const user of users) await writeUser(redis.client(), user, { organization: org });
    let now = Date.UTC(2026, 0, 9, 12); // day 9: the cycle that started on 2025-12-10
    const tollgate = new Tollgate({ redis: redis.client(), clock: () => now });
    const before = await tollgate.consume({ user: users[0]!, kind: 'geocoding', cost: 9 });
    await tollgate.settle(before.reservation!, 'success');
    now = Date.UTC(2026, 0, 12, 12); // in the cycle from 2026-01-10
    for (const [index, user] of users.entries()) {
      const admitted = await tollgate.consume({ user, kind: 'geocoding', cost: 4 + index });
      await tollgate.settle(admitted.reservation!, { success: 3 + index, empty: 1, failed: 0 });
    }
    now = Date.UTC(2026, 1, 11, 12);
    await tollgate.consume({ user: users[1]!, kind: 'geocoding', cost: 2 });

    const out = sink();
    const err = sink();
    const code = await runCli(['--json', 'report', '--org', org, '--month', '202601'], {
      stdout: out.stream,
      stderr: err.stream,
      env: { REDIS_URL: redis.url() },
      clock: () => now,
    });
    expect([code, err.text()]).toEqual([0, '']);
    const rows = JSON.parse(out.text()) as ReportRow[];
    const used = rows.filter((row) => row.metric === 'used');
    // 2026-01-10 .. 2026-02-09: the 9 units of 9 Jan and the 2 of 11 Feb are outside.
    const expected: Record<string, [number, number]> = { [users[0]!]: [4, 0.16], [users[1]!]: [5, 0.2] };
    expect(used.map((row) => [row.date, row.scope, row.owner, row.count, row.credits])).toEqual([
      ['2026-01-12', 'org', org, 9, 0.36],
      ...[...users].sort().map((user) => ['2026-01-12', 'user', user, ...expected[user]!]),
      ['total', 'org', org, 9, 0.36],
      ['total', 'user', '*', 9, 0.36],
    ]);
    // Credits sit only on 'used' rows (they pay for empty units too), never on success_responses.
    expect(rows.filter((row) => row.metric !== 'used').every((row) => row.credits === 0)).toBe(true);
    const body = rows.filter((row) => row.date !== 'total');
    expect(body).toEqual([...body].sort((a, b) => (a.scope + a.owner + a.date < b.scope + b.owner + b.date ? -1 : a.scope + a.owner + a.date > b.scope + b.owner + b.date ? 1 : 0)));
    expect(rows.slice(-1)[0]!.date).toBe('total');

    // --unsorted and --no-totals: the same rows, none of them totals.
    const unsorted = await cli('--json', 'report', '--org', org, '--from', '2026-01-12', '--frame', 'today', '--unsorted', '--no-totals');
    const plain = JSON.parse(unsorted.out) as ReportRow[];
    expect(plain.every((row) => row.date === '2026-01-12')).toBe(true);
    expect([...plain].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
      body.filter((row) => row.date === '2026-01-12').sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
  });
});

describe('a reader that leaves (item 7)', () => {
  it('`tollgate report --all --frame year | head -1` exits quietly on EPIPE', async () => {
    const prefix = fresh('pipe');
    const pipeline = redis.client().pipeline();
    const month = new Date().toISOString().slice(0, 7).replace('-', '');
    const day = new Date().toISOString().slice(8, 10);
    for (let i = 0; i < 3000; i += 1) pipeline.zadd(`user:${prefix}-${i}:geocoder_here:success_responses:${month}`, 1, day);
    await pipeline.exec();
    const result = await new Promise<{ status: number | null; out: string; err: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', 'set -o pipefail; node --import tsx src/cli/main.ts report --all --frame year | head -1'], {
        env: { ...process.env, REDIS_URL: redis.url() },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.once('error', reject);
      child.once('close', (status) => resolve({ status, out, err }));
    });
    expect(result.out).toMatch(/^date\s+scope\s+owner/);
    expect(result.err).toBe('');
    expect(result.status).toBe(0);
  });

  it('an HTTP report whose client disconnects stops the SCAN', async () => {
    const prefix = fresh('gone');
    const seed = redis.client().pipeline();
    for (let i = 0; i < 20_000; i += 1) seed.zadd(`user:${prefix}-${i}:geocoder_here:success_responses:202601`, 1, '05');
    await seed.exec();
    // A proxy that delays every chunk from Redis, so the report takes long enough to leave in the middle.
    const target = new URL(redis.url());
    const proxy = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(Number(target.port || 6379), target.hostname);
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => setTimeout(() => client.writable && client.write(chunk), 25));
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const slow = new Redis(`redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    const app = express();
    const token = 'report-disconnect-token-0123456789';
    app.use('/admin', createAdminRouter({ tollgate: new Tollgate({ redis: slow }), token, clock: () => Date.UTC(2026, 0, 5, 12) }));
    const served = await serve(app);
    const scans = async (): Promise<number> => {
      const info = await redis.client().info('commandstats');
      return Number(/cmdstat_scan:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    try {
      const start = await scans();
      const controller = new AbortController();
      const request = fetch(`${served.url}/admin/reports?frame=today&from=2026-01-05`, {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      }).catch(() => null);
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort();
      await request;
      await new Promise((resolve) => setTimeout(resolve, 300));
      const afterAbort = await scans();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // Nothing more is scanned once the client left, and far fewer steps ran than the whole keyspace needs (20+).
      expect(await scans()).toBe(afterAbort);
      expect(afterAbort - start).toBeGreaterThan(0);
      expect(afterAbort - start).toBeLessThan(20);
    } finally {
      await served.close();
      slow.disconnect();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

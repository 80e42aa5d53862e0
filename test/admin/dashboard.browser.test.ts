// The usage dashboard in a real headless Chromium: log in, search, compare the page's numbers with Redis, download a report, screenshot.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminRouter, Tollgate } from '../../src/index.js';
import { projectExhaustion } from '../../src/core/projection.js';
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { serveForFile } from '../http/support.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const TOKEN = 'dashboard-test-token-0123456789';
const SCREENSHOT_DIR = join(process.cwd(), 'test-output');
const DAY_MS = 86_400_000;

if (!existsSync(CHROMIUM)) {
  console.warn(`dashboard browser test SKIPPED: no chromium binary at ${CHROMIUM} (install Debian's chromium package, or set CHROMIUM_PATH)`);
}

describe.skipIf(!existsSync(CHROMIUM))('usage dashboard in headless Chromium', () => {
  const redis = useTestRedis();
  const name = useNames(redis.client);
  const servers = serveForFile();
  let tollgate: Tollgate;
  let base: string;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    tollgate = new Tollgate({ redis: redis.client(), logger: SILENT_LOGGER });
    const app = express();
    app.use('/admin', createAdminRouter({ tollgate, token: TOKEN, log: () => undefined }));
    base = (await servers.start(app)).url;
    userDataDir = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 1500 },
      acceptDownloads: true,
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  /** An org (geocoding 100, isolines 50, credits on) with two members; usage on earlier days of the cycle and today. */
  async function seed(): Promise<{ org: string; alice: string; bob: string }> {
    const client = redis.client();
    const org = name('dash-org');
    const alice = name('alice');
    const bob = name('bob');
    const now = new Date(Number((await client.time())[0]) * 1000);
    // A cycle that started up to 5 days ago (the day of month of period_end_date anchors it).
    const startDay = Math.max(1, now.getUTCDate() - 5);
    const period = `2016-01-${String(startDay).padStart(2, '0')} 00:00:00 UTC`;
    await writeOrg(client, org, {
      geocoding_quota: '100', here_isolines_quota: '50', mapzen_routing_quota: '0',
      geocoder_provider: 'geonames', isolines_provider: 'straightline', period_end_date: period,
      credits_enabled: 'true', credits_balance_millicredits: '500000',
    });
    for (const user of [alice, bob]) await writeUser(client, user, { organization: org, map_key: `k-${user}` });
    // Earlier days of this cycle: alice 7 a day, bob 3 a day, written as the engine writes them (user and org keys).
    const month = `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    for (let d = startDay; d < now.getUTCDate(); d += 1) {
      const member = String(d).padStart(2, '0');
      for (const [user, units] of [[alice, 7], [bob, 3]] as const) {
        await client.zincrby(`user:${user}:geocoder_geonames:success_responses:${month}`, units, member);
        await client.zincrby(`org:${org}:geocoder_geonames:success_responses:${month}`, units, member);
      }
    }
    // Today through the engine: 4 geocodes for alice (one empty), 2 isolines for bob.
    for (let i = 0; i < 4; i += 1) {
      const admission = await tollgate.consume({ user: alice, kind: 'geocoding' });
      await tollgate.settle(admission.reservation!, i === 0 ? 'empty' : 'success');
    }
    const isolines = await tollgate.consume({ user: bob, kind: 'isolines', cost: 2 });
    await tollgate.settle(isolines.reservation!, 'success');
    return { org, alice, bob };
  }

  const text = async (page: Page, selector: string): Promise<string> => (await page.locator(selector).first().textContent())?.trim() ?? '';
  const fmt = (value: number): string => value.toLocaleString('en-US');

  it('logs in with the token kept in sessionStorage, finds a member, shows Redis numbers, projections, shares and credits, downloads a CSV', async () => {
    const { org, alice, bob } = await seed();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));

    await page.goto(`${base}/admin/dashboard`);
    // A wrong token is refused and the form stays.
    await page.fill('#token', 'wrong-token-0123456789-xyz');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => text(page, '#login-error')).toContain('refused');
    expect(await page.evaluate("sessionStorage.getItem('tollgate-admin-token')")).toBeNull();

    await page.fill('#token', TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#app:not([hidden])');
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.evaluate("sessionStorage.getItem('tollgate-admin-token')")).toBe(TOKEN);

    await page.fill('#query', alice.slice(0, -3));
    await page.click('#search-form button[type=submit]');
    await page.click(`#hits button[data-name="${alice}"]`);
    await page.waitForSelector('article.service[data-kind="geocoding"] canvas');

    // Every figure on the page equals what Redis holds (the pool of the org, for a member).
    for (const kind of ['geocoding', 'isolines', 'routing'] as const) {
      const info = await tollgate.quota({ user: alice, kind });
      const card = `article.service[data-kind="${kind}"]`;
      expect(await text(page, `${card} [data-field=quota]`)).toBe(fmt(info.quota));
      expect(await text(page, `${card} [data-field=used]`)).toBe(fmt(info.used));
      expect(await text(page, `${card} [data-field=remaining]`)).toBe(fmt(info.remaining));
      expect(await text(page, `${card} [data-field=serviceType]`)).toBe(info.serviceType);
      expect(await text(page, `${card} [data-field=cycleStart]`)).toBe(info.cycleStart.toISOString().slice(0, 10));
      expect(await text(page, `${card} [data-field=resetsAt]`)).toBe(info.resetsAt.toISOString().slice(0, 10));
      expect(await text(page, `${card} [data-field=limit]`)).toBe('hard limit');
    }
    const geocoding = await tollgate.quota({ user: alice, kind: 'geocoding' });
    const daysElapsed = Math.round((Date.parse(`${new Date(Number((await redis.client().time())[0]) * 1000).toISOString().slice(0, 10)}T00:00:00Z`) - geocoding.cycleStart.getTime()) / DAY_MS) + 1;
    expect(geocoding.used).toBe(10 * (daysElapsed - 1) + 4);
    const projection = projectExhaustion({
      quota: geocoding.quota, used: geocoding.used, softLimit: false,
      cycleStartMs: geocoding.cycleStart.getTime(), resetsAtMs: geocoding.resetsAt.getTime(), nowMs: Date.now(),
    });
    const projectionText = await text(page, 'article.service[data-kind="geocoding"] [data-field=projection]');
    if (projection.status === 'runs_out') expect(projectionText).toContain(`runs out on ${projection.date}`);
    else expect(projectionText.length).toBeGreaterThan(10);

    // Members and their share: each one's own counters.
    for (const member of [alice, bob]) {
      const own = await tollgate.usage({ user: member, kind: 'geocoding' });
      expect(await page.locator(`tr[data-member="${member}"] td[data-kind="geocoding"]`).getAttribute('data-used')).toBe(String(own.used));
    }
    expect(await text(page, `tr[data-member="${bob}"] td[data-kind="isolines"]`)).toMatch(/^2 \(100\.0 %\)/);
    // Credits: budgeting is on for the org, so the member's budget shows (no allocation = the org balance).
    expect(await text(page, '[data-credit=assigned]')).toBe('no limit');

    // Report download from the page, with the token sent as a header.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).toBe('date,scope,owner,service_type,metric,count,credits');
    expect(csv).toContain(`,${alice},geocoder_geonames,success_responses,`);
    expect(download.url().startsWith('blob:')).toBe(true);

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-member.png'), fullPage: true });

    // The org itself: its members' shares add up to the pool.
    await page.fill('#query', org);
    await page.click('#search-form button[type=submit]');
    await page.click(`#hits button[data-name="${org}"]`);
    await page.waitForSelector(`#view-title[data-name="${org}"]`);
    const pool = await tollgate.usage({ org, kind: 'geocoding' });
    expect(await text(page, 'article.service[data-kind="geocoding"] [data-field=used]')).toBe(fmt(pool.used));
    // The balance Redis holds after today's charges (4 geocodes at 0.04, 2 isolines at 0.5: 498.84).
    const balance = Number(await redis.client().hget(`rails:orgs:${org}`, 'credits_balance_millicredits')) / 1000;
    expect(balance).toBe(498.84);
    expect(await text(page, '[data-credit=balance]')).toBe(fmt(balance));
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'dashboard-org.png'), fullPage: true });

    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
});

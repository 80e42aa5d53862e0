// Issue 11 items 3, 4 and 8 through the CLI against a real Redis: new verbs, org-rule warnings, one date parser, commander errors.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { cliFor } from '../helpers/cli.js';

const redis = useTestRedis();
const fresh = useNames(redis.client);

const { cli, json } = cliFor(redis.url);

describe('missing verbs (item 3)', () => {
  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await cli('--version')).toEqual({ code: 0, out: `${version}\n`, err: '' });
  });

  it('user list and org list walk every SCAN page, or one page with --cursor', async () => {
    const users = Array.from({ length: 30 }, () => fresh('ls-u'));
    for (const user of users) await writeUser(redis.client(), user, { geocoding_quota: '1' });
    const org = fresh('ls-o');
    await writeOrg(redis.client(), org, { geocoding_quota: '1' });

    const all = await cli('user', 'list', '--count', '7');
    expect(all.code).toBe(0);
    const listed = all.out.trim().split('\n');
    for (const user of users) expect(listed).toContain(user);
    expect(listed).not.toContain(org);
    expect((await json<{ names: string[] }>('org', 'list')).names).toContain(org);

    // Page by page with --json: the cursors lead through every name exactly once.
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const page = await json<{ names: string[]; cursor: string }>('user', 'list', '--cursor', cursor, '--count', '5');
      seen.push(...page.names);
      cursor = page.cursor;
      pages += 1;
    } while (cursor !== '0');
    expect(pages).toBeGreaterThan(1);
    for (const user of users) expect(seen.filter((name) => name === user)).toHaveLength(1);
    expect((await cli('user', 'list', '--cursor', 'garbage')).code).toBe(2);
  });

  it('delete refuses while usage keys exist unless --with-usage, and never an org with members', async () => {
    const org = fresh('del-o');
    const user = fresh('del-u');
    await writeOrg(redis.client(), org, { geocoding_quota: '10' });
    await writeUser(redis.client(), user, { organization: org });
    await new Tollgate({ redis: redis.client() }).consume({ user, kind: 'geocoding', cost: 2 });

    const before = await snapshot(redis.client(), [user, org]);
    const members = await cli('org', 'delete', org, '--with-usage');
    expect([members.code, members.err]).toEqual([1, expect.stringMatching(/has 1 member.*\[ERR_TOLLGATE_HAS_MEMBERS\]/)]);
    const usage = await cli('user', 'delete', user);
    expect([usage.code, usage.err]).toEqual([1, expect.stringMatching(/usage key.*--with-usage.*\[ERR_TOLLGATE_HAS_USAGE\]/)]);
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);

    const deleted = await json('user', 'delete', user, '--with-usage');
    expect(deleted).toMatchObject({ ok: true, deleted: `user:${user}`, months: [expect.stringMatching(/^\d{6}$/)] });
    expect(deleted.usageKeys).toBeGreaterThanOrEqual(2);
    expect(await redis.client().exists(`rails:users:${user}`)).toBe(0);
    expect(await redis.client().keys(`user:${user}:*`)).toEqual([]);
    // The org is memberless now, but its pool still holds usage.
    expect((await cli('org', 'delete', org)).err).toContain('ERR_TOLLGATE_HAS_USAGE');
    expect(await json('org', 'delete', org, '--with-usage')).toMatchObject({ deleted: `org:${org}` });
    // No key named after either is left (the engine's shared reservation buckets are not theirs).
    expect(Object.keys(await snapshot(redis.client(), [user, org])).filter((key) => key.includes(user) || key.includes(org))).toEqual([]);
    const plain = fresh('del-p');
    await writeUser(redis.client(), plain, { geocoding_quota: '1' });
    expect(await json('user', 'delete', plain)).toMatchObject({ deleted: `user:${plain}`, usageKeys: 0 });
  });

  it('sets and removes a block price, which user show then shows', async () => {
    const user = fresh('bp-u');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    expect((await cli('user', 'set-block-price', user, 'here_isolines', '1500')).code).toBe(0);
    expect((await json('user', 'show', user)).here_isolines.block_price).toBe(1500);
    expect((await cli('user', 'set-block-price', user, 'isolines', 'none')).code).toBe(0);
    expect((await json('user', 'show', user)).here_isolines.block_price).toBeNull();
  });

  it('credits back units of today, on the user and the org pool, audited', async () => {
    const org = fresh('adj-o');
    const user = fresh('adj-u');
    await writeOrg(redis.client(), org, { geocoding_quota: '10' });
    await writeUser(redis.client(), user, { organization: org });
    const tollgate = new Tollgate({ redis: redis.client() });
    await tollgate.consume({ user, kind: 'geocoding', cost: 10 });
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 1 })).allowed).toBe(false);

    const adjusted = await json('user', 'adjust-usage', user, 'geocoding', '4', '--reason', 'upstream outage');
    expect(adjusted).toMatchObject({ user, kind: 'geocoding', units: 4, reason: 'upstream outage', actor: 'cli' });
    expect((await tollgate.usage({ user, kind: 'geocoding' })).used).toBe(6);
    expect((await tollgate.usage({ org, kind: 'geocoding' })).used).toBe(6);
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 4 })).allowed).toBe(true);
    const audit = await json<Array<Record<string, unknown>>>('user', 'adjustments', user);
    expect(audit).toEqual([expect.objectContaining({ units: 4, reason: 'upstream outage', keys: adjusted.keys })]);
    // More than the cycle used is refused and changes nothing.
    const before = await snapshot(redis.client(), [user, org]);
    expect((await cli('user', 'adjust-usage', user, 'geocoding', '11')).err).toContain('ERR_TOLLGATE_ADJUSTMENT_TOO_LARGE');
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);
  });
});

describe('org rules warn (item 4)', () => {
  it('joining an org without period_end_date while the member has its own warns', async () => {
    const org = fresh('w-o');
    const user = fresh('w-u');
    await writeOrg(redis.client(), org, { geocoding_quota: '10' });
    await writeUser(redis.client(), user, { period_end_date: '2016-10-10 00:00:00 UTC' });
    const joined = await cli('user', 'set-org', user, org);
    expect(joined.code).toBe(0);
    expect(joined.err).toMatch(/^tollgate: warning: org \S+ has no period_end_date, so member \S+ keeps its own billing cycle/);
    const asJson = await cli('--json', 'user', 'set-period-end', user, '2016-10-20');
    expect(JSON.parse(asJson.out).warnings).toEqual([expect.stringContaining('has no period_end_date')]);
    // Once the org has one, the member's own date is overridden: that warns too.
    await cli('org', 'set-period-end', org, '2016-10-01');
    expect((await cli('user', 'set-period-end', user, '2016-10-05')).err).toMatch(/whose period_end_date .* applies/);
  });

  it("setting a member's own quota while the org has one warns that it has no effect", async () => {
    const org = fresh('w-o');
    const user = fresh('w-u');
    await writeOrg(redis.client(), org, { geocoding_quota: '10' });
    await writeUser(redis.client(), user, { organization: org });
    const set = await cli('user', 'set-quota', user, 'geocoding', '500');
    expect(set.code).toBe(0);
    expect(set.err).toMatch(/member of org \S+, whose geocoding quota \(geocoding_quota\) applies: this value is stored but has no effect/);
    expect(await redis.client().hget(`rails:users:${user}`, 'geocoding_quota')).toBe('500');
    // A kind the org does not set: no warning.
    expect((await cli('user', 'set-quota', user, 'routing', '5')).err).toBe('');
  });

  it('changing a provider mid-cycle warns that monthly_use restarts', async () => {
    const user = fresh('w-p');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const tollgate = new Tollgate({ redis: redis.client() });
    await tollgate.consume({ user, kind: 'geocoding', cost: 7 });
    const changed = await cli('user', 'set-provider', user, 'geocoding', 'mapbox');
    expect(changed.err).toMatch(/moves counting from geocoder_here to geocoder_mapbox keys mid-cycle: the 7 units used this cycle/);
    expect((await tollgate.quota({ user: user, kind: 'geocoding' })).used).toBe(0); // CARTO's rule, kept: the warning says so
    // No usage under the current provider: nothing to warn about.
    expect((await cli('user', 'set-provider', user, 'isolines', 'mapbox')).err).toBe('');
  });
});

describe('one date parser, one message (item 8)', () => {
  it.each([
    ['2016-10-10', '2016-10-10 00:00:00 UTC'],
    ['2016-10-10T00:00:00Z', '2016-10-10 00:00:00 UTC'],
    ['2016-10-10T06:30Z', '2016-10-10 06:30:00 UTC'],
    ['2016-10-10 00:00:00 UTC', '2016-10-10 00:00:00 UTC'],
    ['2016-10-10 00:00:00 +0000', '2016-10-10 00:00:00 +0000'],
  ])('set-period-end accepts %s', async (date, stored) => {
    const user = fresh('d-u');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    expect(await json('user', 'set-period-end', user, date)).toMatchObject({ period_end_date: stored });
  });

  it('the help and the error name the same forms', async () => {
    const user = fresh('d-u');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    const help = await cli('user', 'set-period-end', '--help');
    expect(help.out).toContain('2016-10-10T00:00:00Z');
    const bad = await cli('user', 'set-period-end', user, '10/10/2016');
    expect(bad.err).toMatch(/2016-10-10T00:00:00Z.*\[ERR_TOLLGATE_INVALID_DATE\]/);
    const report = await cli('report', '--user', user, '--from', '10/10/2016');
    expect(report.err).toBe(bad.err);
  });
});

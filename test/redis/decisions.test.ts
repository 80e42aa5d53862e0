// Decisions against a real Redis: every quota case, cycles over real keys, org pooling, outcomes.
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const NOW = Date.parse('2017-03-20T12:00:00Z');
const name = useNames(redis.client);
const tollgateAt = (nowMs = NOW): Tollgate => new Tollgate({ redis: redis.client(), clock: () => nowMs });
const score = async (key: string, member: string): Promise<number> => Number((await redis.client().zscore(key, member)) ?? 0);


describe('the decision: soft OR (quota > 0 AND used + cost <= quota)', () => {
  it.each([
    ['quota 0', { geocoding_quota: '0' }, 0, 1, false, 'no_quota'],
    ['quota ""', { geocoding_quota: '' }, 0, 1, false, 'no_quota'],
    ['quota missing', { geocoder_provider: 'heremaps' }, 0, 1, false, 'no_quota'],
    ['quota 0 with soft limit', { geocoding_quota: '0', soft_geocoding_limit: 'true' }, 0, 1, true, 'soft_limit'],
    ['soft limit past the quota', { geocoding_quota: '5', soft_geocoding_limit: 'TRUE' }, 9, 3, true, 'soft_limit'],
    ['soft flag "false"', { geocoding_quota: '5', soft_geocoding_limit: 'false' }, 5, 1, false, 'quota_exceeded'],
    ['reaching the quota exactly', { geocoding_quota: '10' }, 7, 3, true, 'within_quota'],
    ['one past the quota', { geocoding_quota: '10' }, 8, 3, false, 'quota_exceeded'],
    ['at the quota already', { geocoding_quota: '10' }, 10, 1, false, 'quota_exceeded'],
    ['cost larger than the quota', { geocoding_quota: '10' }, 0, 11, false, 'quota_exceeded'],
  ])('%s', async (_case, config, alreadyUsed, cost, allowed, reason) => {
    const user = name('u');
    await writeUser(redis.client(), user, config);
    if (alreadyUsed > 0) await redis.client().zadd(`user:${user}:geocoder_here:success_responses:201703`, alreadyUsed, '20');
    const tollgate = tollgateAt();
    const decision = await tollgate.consume({ user, kind: 'geocoding', cost });
    expect(decision).toMatchObject({ allowed, reason, used: allowed ? alreadyUsed + cost : alreadyUsed });
    expect(decision.reservation !== null).toBe(allowed);
    expect(await score(`user:${user}:geocoder_here:success_responses:201703`, '20')).toBe(allowed ? alreadyUsed + cost : alreadyUsed);
    expect(await score(`user:${user}:geocoder_here:total_requests:201703`, '20')).toBe(allowed ? cost : 0);
  });

  it('judges all N units of a request up front and counts nothing when they do not fit', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { here_isolines_quota: '10' });
    await redis.client().zadd(`user:${user}:here_isolines:isolines_generated:201703`, 8, '20');
    const decision = await tollgateAt().consume({ user, kind: 'isolines', cost: 3 });
    expect(decision).toMatchObject({ allowed: false, used: 8, remaining: 2 });
    expect(await score(`user:${user}:here_isolines:isolines_generated:201703`, '20')).toBe(8);
  });

  it('check judges without counting; checkBulk says how many units fit', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    await redis.client().zadd(`user:${user}:geocoder_here:empty_responses:201703`, 6, '19');
    const tollgate = tollgateAt();
    expect(await tollgate.check({ user, kind: 'geocoding', cost: 4 })).toMatchObject({ allowed: true, used: 6, remaining: 4 });
    expect(await tollgate.check({ user, kind: 'geocoding', cost: 5 })).toMatchObject({ allowed: false, used: 6 });
    const bulk = await tollgate.checkBulk({ user, kind: 'geocoding', cost: 25 });
    expect(bulk).toMatchObject({ admissible: 4, decision: { allowed: false } });
    expect(await redis.client().exists(`user:${user}:geocoder_here:success_responses:201703`)).toBe(0);
  });

  it('says when the cycle started and when it resets', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '1', period_end_date: '2016-10-21 00:00:00 UTC' });
    const decision = await tollgateAt().check({ user, kind: 'geocoding' });
    expect(decision.cycleStart.toISOString()).toBe('2017-02-21T00:00:00.000Z');
    expect(decision.resetsAt.toISOString()).toBe('2017-03-21T00:00:00.000Z');
  });
});

describe('what counts in the cycle', () => {
  it('sums success + empty across two month keys from the cycle start to today, never failed or later days', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '1000', period_end_date: '2016-10-21 00:00:00 UTC' });
    const key = (metric: string, month: string): string => `user:${user}:geocoder_here:${metric}:${month}`;
    const client = redis.client();
    await client.zadd(key('success_responses', '201702'), 100, '20', 1, '21', 2, '28'); // day 20 is before the cycle
    await client.zadd(key('empty_responses', '201702'), 4, '22');
    await client.zadd(key('success_responses', '201703'), 8, '01', 16, '20', 500, '21'); // day 21 is after today
    await client.zadd(key('empty_responses', '201703'), 32, '05');
    await client.zadd(key('failed_responses', '201703'), 64, '05');
    await client.zadd(key('total_requests', '201703'), 128, '05');
    await client.zadd(`user:${user}:geocoder_google:success_responses:201703`, 256, '05'); // another provider
    const decision = await tollgateAt().check({ user, kind: 'geocoding' });
    expect(decision.used).toBe(1 + 2 + 4 + 8 + 16 + 32);
  });

  it('counts isolines_generated + empty for isolines, success + empty for routing', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { here_isolines_quota: '100', mapzen_routing_quota: '100' });
    const client = redis.client();
    await client.zadd(`user:${user}:here_isolines:isolines_generated:201703`, 5, '10');
    await client.zadd(`user:${user}:here_isolines:success_responses:201703`, 50, '10');
    await client.zadd(`user:${user}:here_isolines:empty_responses:201703`, 2, '11');
    await client.zadd(`user:${user}:routing_mapzen:success_responses:201703`, 3, '10');
    await client.zadd(`user:${user}:routing_mapzen:empty_responses:201703`, 1, '12');
    await client.zadd(`user:${user}:routing_mapzen:failed_responses:201703`, 40, '12');
    const tollgate = tollgateAt();
    expect((await tollgate.check({ user, kind: 'isolines' })).used).toBe(7);
    expect((await tollgate.check({ user, kind: 'routing' })).used).toBe(4);
  });

  it('reads the month of the clock: a new month starts from zero for a calendar-month user', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '5' });
    await redis.client().zadd(`user:${user}:geocoder_here:success_responses:201703`, 5, '31');
    expect((await tollgateAt(Date.parse('2017-03-31T23:59:59Z')).check({ user, kind: 'geocoding' })).allowed).toBe(false);
    const april = await tollgateAt(Date.parse('2017-04-01T00:00:00Z')).consume({ user, kind: 'geocoding' });
    expect(april).toMatchObject({ allowed: true, used: 1 });
    expect(await score(`user:${user}:geocoder_here:success_responses:201704`, '01')).toBe(1);
  });
});

describe('orgs', () => {
  it('pools usage: members spend the org quota and every increment lands on user and org keys', async () => {
    const org = name('o');
    const [ann, ben] = [name('u'), name('u')];
    await writeOrg(redis.client(), org, { geocoding_quota: '3' });
    await writeUser(redis.client(), ann, { organization: org, geocoding_quota: '100' });
    await writeUser(redis.client(), ben, { organization: org, geocoding_quota: '100' });
    const tollgate = tollgateAt();
    expect((await tollgate.consume({ user: ann, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
    const denied = await tollgate.consume({ user: ben, kind: 'geocoding', cost: 2 });
    expect(denied).toMatchObject({ allowed: false, org, quota: 3, used: 2 });
    expect((await tollgate.consume({ user: ben, kind: 'geocoding', cost: 1 })).allowed).toBe(true);
    expect(await score(`user:${ann}:geocoder_here:success_responses:201703`, '20')).toBe(2);
    expect(await score(`user:${ben}:geocoder_here:success_responses:201703`, '20')).toBe(1);
    expect(await score(`org:${org}:geocoder_here:success_responses:201703`, '20')).toBe(3);
    expect(await score(`org:${org}:geocoder_here:total_requests:201703`, '20')).toBe(3);
  });

  it("uses the org's provider and cycle, the member's soft flag", async () => {
    const org = name('o');
    const user = name('u');
    await writeOrg(redis.client(), org, { geocoding_quota: '1', geocoder_provider: 'mapbox', period_end_date: '2016-10-21 00:00:00 +0000' });
    await writeUser(redis.client(), user, { organization: org, soft_geocoding_limit: 'true', geocoder_provider: 'google' });
    await redis.client().zadd(`org:${org}:geocoder_mapbox:success_responses:201702`, 1, '25');
    const decision = await tollgateAt().consume({ user, kind: 'geocoding' });
    expect(decision).toMatchObject({ allowed: true, reason: 'soft_limit', serviceType: 'geocoder_mapbox', used: 2 });
    expect(await score(`org:${org}:geocoder_mapbox:success_responses:201703`, '20')).toBe(1);
  });
});

describe('settling', () => {
  it('keeps success and empty charged, refunds failed, counts total_requests for every admitted request', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const tollgate = tollgateAt();
    const key = (metric: string): string => `user:${user}:geocoder_here:${metric}:201703`;
    const ok = await tollgate.consume({ user, kind: 'geocoding', cost: 3 });
    const empty = await tollgate.consume({ user, kind: 'geocoding', cost: 2 });
    const failed = await tollgate.consume({ user, kind: 'geocoding', cost: 4 });
    expect(failed.used).toBe(9);
    expect(await tollgate.settle(ok.reservation!, 'success')).toEqual({ status: 'settled' });
    await tollgate.settle(empty.reservation!, 'empty');
    await tollgate.settle(failed.reservation!, 'failed');
    expect(await score(key('success_responses'), '20')).toBe(3);
    expect(await score(key('empty_responses'), '20')).toBe(2);
    expect(await score(key('failed_responses'), '20')).toBe(4);
    expect(await score(key('total_requests'), '20')).toBe(9);
    expect((await tollgate.check({ user, kind: 'geocoding' })).used).toBe(5);
    const usage = await tollgate.usage({ user, kind: 'geocoding' });
    expect(usage.used).toBe(5);
    expect(usage.metrics).toMatchObject({ success_responses: 3, empty_responses: 2, failed_responses: 4, total_requests: 9 });
  });

  it('settles a split outcome of a bulk request on user and org', async () => {
    const org = name('o');
    const user = name('u');
    await writeOrg(redis.client(), org, { geocoding_quota: '100' });
    await writeUser(redis.client(), user, { organization: org });
    const tollgate = tollgateAt();
    const bulk = await tollgate.consume({ user, kind: 'geocoding', cost: 10 });
    await tollgate.settle(bulk.reservation!, { success: 6, empty: 3, failed: 1 });
    for (const owner of [`user:${user}`, `org:${org}`]) {
      expect(await score(`${owner}:geocoder_here:success_responses:201703`, '20')).toBe(6);
      expect(await score(`${owner}:geocoder_here:empty_responses:201703`, '20')).toBe(3);
      expect(await score(`${owner}:geocoder_here:failed_responses:201703`, '20')).toBe(1);
    }
    expect((await tollgate.usage({ org, kind: 'geocoding' })).used).toBe(9);
  });

  it('records isolines_generated per isoline and one success_responses per request', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { here_isolines_quota: '10' });
    const tollgate = tollgateAt();
    const admission = await tollgate.consume({ user, kind: 'isolines', cost: 3 });
    await tollgate.settle(admission.reservation!, 'success');
    expect(await score(`user:${user}:here_isolines:isolines_generated:201703`, '20')).toBe(3);
    expect(await score(`user:${user}:here_isolines:success_responses:201703`, '20')).toBe(1);
    expect(await score(`user:${user}:here_isolines:total_requests:201703`, '20')).toBe(3);
  });

  it('settles on the day and month of admission even when the request ends after midnight', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const admission = await tollgateAt(Date.parse('2017-03-31T23:59:59Z')).consume({ user, kind: 'geocoding' });
    await tollgateAt(Date.parse('2017-04-01T00:00:01Z')).settle(admission.reservation!, 'failed');
    expect(await score(`user:${user}:geocoder_here:failed_responses:201703`, '31')).toBe(1);
    expect(await score(`user:${user}:geocoder_here:success_responses:201703`, '31')).toBe(0);
    expect(await redis.client().exists(`user:${user}:geocoder_here:failed_responses:201704`)).toBe(0);
  });
});

describe('reading back', () => {
  it('reports quota, usage, limit, provider and price for a member from the org', async () => {
    const org = name('o');
    const user = name('u');
    await writeOrg(redis.client(), org, { geocoding_quota: '1000', geocoding_block_price: '1500', geocoder_provider: 'google' });
    await writeUser(redis.client(), user, { organization: org, geocoding_quota: '5' });
    await redis.client().zadd(`org:${org}:geocoder_google:success_responses:201703`, 743, '02');
    expect(await tollgateAt().quota({ user: user, kind: 'geocoding' })).toMatchObject({
      org,
      quota: 1000,
      used: 743,
      remaining: 257,
      softLimit: false,
      provider: 'google',
      serviceType: 'geocoder_google',
      blockPrice: 1500,
    });
  });
});

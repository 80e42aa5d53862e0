// Smoke: a consume against a real Redis charges the CARTO keys.
import { describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { useTestRedis } from '../helpers/redis.js';
import { uniqueName, writeUser } from '../helpers/fixtures.js';

const redis = useTestRedis();

describe('smoke', () => {
  it('admits and counts', async () => {
    const user = uniqueName('u');
    await writeUser(redis.client(), user, { geocoding_quota: '2', period_end_date: '2016-10-01 00:00:00 UTC' });
    const tollgate = new Tollgate({ redis: redis.client() });
    const a = await tollgate.consume({ user, kind: 'geocoding' });
    const b = await tollgate.consume({ user, kind: 'geocoding' });
    const c = await tollgate.consume({ user, kind: 'geocoding' });
    console.log(a, c);
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false]);
    await tollgate.settle(a.reservation!, 'empty');
    console.log(await tollgate.usage({ user }, 'geocoding'), await tollgate.quota(user, 'geocoding'));
  });
});

// The config cache: fewer round trips, and never a decision on config that has changed.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, Tollgate } from '../../src/index.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const cached = (): Tollgate => new Tollgate({ redis: redis.client(), configCacheMs: 60_000 });

/** How many times the server ran `command` since the last reset (INFO commandstats). */
async function calls(command: string): Promise<number> {
  const info = await redis.client().info('commandstats');
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

describe('config cache', () => {
  it('reads a user config once for many decisions', async (ctx) => {
    if (!redis.owned()) ctx.skip(); // counting commands needs a Redis no one else uses
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const gate = cached();
    await gate.consume({ user, kind: 'geocoding' });
    await redis.client().config('RESETSTAT');
    for (let i = 0; i < 20; i += 1) await gate.consume({ user, kind: 'geocoding' });
    expect(await calls('hgetall')).toBe(0);
    expect(await calls('evalsha')).toBe(20);
  });

  it('reads it every time with configCacheMs: 0', async (ctx) => {
    if (!redis.owned()) ctx.skip();
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const gate = new Tollgate({ redis: redis.client(), configCacheMs: 0 });
    await gate.consume({ user, kind: 'geocoding' });
    await redis.client().config('RESETSTAT');
    for (let i = 0; i < 5; i += 1) await gate.consume({ user, kind: 'geocoding' });
    expect(await calls('hgetall')).toBe(5);
  });

  it('decides on a changed quota at once, lowered or raised', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = cached();
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, quota: 10 });
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '1');
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: false, quota: 1 });
    await redis.client().hset(`rails:users:${user}`, 'soft_geocoding_limit', 'true');
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, reason: 'soft_limit' });
  });

  it('follows a user into and out of an org at once', async () => {
    const user = name('u');
    const org = name('o');
    await writeOrg(redis.client(), org, { geocoding_quota: '0' });
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = cached();
    expect((await gate.consume({ user, kind: 'geocoding' })).org).toBeNull();
    await redis.client().hset(`rails:users:${user}`, 'organization', org);
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: false, org, quota: 0 });
    await redis.client().hset(`rails:orgs:${org}`, 'geocoding_quota', '50');
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, org, quota: 50 });
    await redis.client().hdel(`rails:users:${user}`, 'organization');
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, org: null, quota: 10 });
  });

  it('notices a deleted user at once', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = cached();
    await gate.consume({ user, kind: 'geocoding' });
    await redis.client().del(`rails:users:${user}`);
    await expect(gate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({ code: ERROR_CODES.unknownUser });
  });
});

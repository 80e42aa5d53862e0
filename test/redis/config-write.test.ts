// The operators' guarded write: refused changes write nothing, and checks and writes are one step.
import { describe, expect, it } from 'vitest';
import { defineScripts, runConfigWrite } from '../../src/redis/scripts.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const write = (w: Parameters<typeof runConfigWrite>[1]) => {
  defineScripts(redis.client());
  return runConfigWrite(redis.client(), w);
};

describe('config-write.lua', () => {
  it('updates an existing hash: sets, deletes and increments in one step', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '5', api_key_sha256: 'ab', credits_spent_millicredits: '7' });
    const reply = await write({
      key: `rails:users:${user}`,
      mode: 'update',
      set: { geocoding_quota: '10' },
      del: ['api_key_sha256', 'not_there'],
      incr: { credits_spent_millicredits: 3 },
    });
    expect(reply).toEqual({ status: 'done', deleted: 1 });
    expect(await redis.client().hgetall(`rails:users:${user}`)).toEqual({ geocoding_quota: '10', credits_spent_millicredits: '10' });
  });

  it('never re-creates a hash that was deleted: an update of a missing hash writes nothing', async () => {
    const user = name('u');
    const before = await snapshot(redis.client(), [user]);
    expect(await write({ key: `rails:users:${user}`, mode: 'update', set: { geocoding_quota: '10' } })).toEqual({
      status: 'missing',
      key: `rails:users:${user}`,
    });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });

  it('creates only what does not exist', async () => {
    const org = name('o');
    expect(await write({ key: `rails:orgs:${org}`, mode: 'create', set: { credits_enabled: 'false' } })).toEqual({ status: 'done', deleted: 0 });
    expect(await write({ key: `rails:orgs:${org}`, mode: 'create', set: { credits_enabled: 'true' } })).toEqual({ status: 'exists' });
    expect(await redis.client().hget(`rails:orgs:${org}`, 'credits_enabled')).toBe('false');
  });

  it('refuses when a required hash is gone or an expected field moved, writing nothing', async () => {
    const user = name('u');
    const [acme, other] = [name('o'), name('o')];
    await writeOrg(redis.client(), acme, { credits_enabled: 'true' });
    await writeUser(redis.client(), user, { organization: other });
    const before = await snapshot(redis.client(), [user, acme, other]);
    // The user moved to another org after the operator looked: no allocation from acme.
    expect(
      await write({
        key: `rails:users:${user}`,
        mode: 'update',
        requires: [`rails:orgs:${acme}`],
        expect: { organization: acme },
        set: { credits_allocation_millicredits: '5000' },
      }),
    ).toEqual({ status: 'changed', field: 'organization' });
    expect(
      await write({ key: `rails:users:${user}`, mode: 'update', requires: [`rails:orgs:${other}`], set: { organization: other } }),
    ).toEqual({ status: 'missing', key: `rails:orgs:${other}` });
    expect(await snapshot(redis.client(), [user, acme, other])).toEqual(before);
  });

  it('refuses a counter that is garbled or would leave [0, 10^15], writing nothing', async () => {
    const org = name('o');
    await writeOrg(redis.client(), org, { credits_balance_millicredits: '12.5', other: '1' });
    const before = await snapshot(redis.client(), [org]);
    expect(
      await write({ key: `rails:orgs:${org}`, mode: 'update', set: { credits_enabled: 'true' }, incr: { credits_balance_millicredits: 1 } }),
    ).toEqual({ status: 'bad_counter', field: 'credits_balance_millicredits' });
    expect(await write({ key: `rails:orgs:${org}`, mode: 'update', incr: { other: -2 } })).toEqual({ status: 'bad_counter', field: 'other' });
    expect(await snapshot(redis.client(), [org])).toEqual(before);
  });

  it('refuses a key of the wrong type', async () => {
    const user = name('u');
    await redis.client().set(`rails:users:${user}`, 'not a hash');
    expect(await write({ key: `rails:users:${user}`, mode: 'update', set: { a: '1' } })).toEqual({
      status: 'wrong_type',
      key: `rails:users:${user}`,
    });
    expect(await redis.client().get(`rails:users:${user}`)).toBe('not a hash');
  });
});

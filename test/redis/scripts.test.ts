// The decide script on its own: a re-sent admission charges once, whatever its copy would now be
// refused for, and a late one charges nothing.
import { describe, expect, it } from 'vitest';
import { chargeCheck, pendingValue, planDecision } from '../../src/core/accounting.js';
import { resolveAccount } from '../../src/core/config.js';
import { readAccount } from '../../src/redis/accounts.js';
import { ReservationIds } from '../../src/redis/reservations.js';
import { CARTO_LAYOUT } from '../../src/core/layout.js';
import { compileDecidePlan, defineScripts, runDecide, type CompiledPlan, type DecideCall } from '../../src/redis/scripts.js';
import { snapshot, useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);

/** The exact decide command Tollgate would send to admit two geocodes for `user` now. */
async function admissionFor(user: string, deadlineMs: number | null): Promise<{ plan: CompiledPlan; call: DecideCall; chargeKey: string; day: string }> {
  const client = redis.client();
  defineScripts(client);
  const { source, serverNowMs } = await readAccount(client, user);
  const account = resolveAccount(source, 'geocoding');
  const plan = planDecision(account, serverNowMs);
  const compiled = compileDecidePlan(account, plan, null);
  const slot = new ReservationIds(60_000, CARTO_LAYOUT).next(serverNowMs, user, account.org);
  const call: DecideCall = {
    mode: 'consume',
    cost: 2,
    nowMs: null,
    deadlineMs,
    bucketKey: slot.bucketKey,
    field: slot.field,
    pendingValue: pendingValue(chargeCheck({ ...account, yyyymm: plan.yyyymm, day: plan.day }), 2),
    expireAtMs: slot.expireAtMs,
    requestId: null,
  };
  return { plan: compiled, call, chargeKey: plan.charges[0]!.key, day: plan.day };
}

describe('decide.lua', () => {
  it('charges once when the same admission command reaches Redis twice (a client re-send)', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const { plan, call, chargeKey, day } = await admissionFor(user, null);
    const first = await runDecide(redis.client(), plan, call);
    const resent = await runDecide(redis.client(), plan, call);
    expect(first).toMatchObject({ status: 'decided', allowed: true, used: 2 });
    expect(resent).toMatchObject({ status: 'replayed', used: 2, signature: '' });
    expect(await redis.client().zscore(chargeKey, day)).toBe('2');
    await redis.client().del(call.bucketKey);
  });

  it('replays a re-sent admission even when config changed after it charged', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const { plan, call, chargeKey, day } = await admissionFor(user, null);
    await runDecide(redis.client(), plan, call);
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '11');
    expect(await runDecide(redis.client(), plan, call)).toMatchObject({ status: 'replayed', used: 2 });
    expect(await redis.client().zscore(chargeKey, day)).toBe('2');
    await redis.client().del(call.bucketKey);
  });

  it('replays a re-sent admission that its own charge would now deny', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '2' });
    const { plan, call, chargeKey, day } = await admissionFor(user, null);
    expect(await runDecide(redis.client(), plan, call)).toMatchObject({ status: 'decided', allowed: true, used: 2 });
    // The quota is spent by the original: the copy must still hear "admitted", not "denied".
    expect(await runDecide(redis.client(), plan, call)).toMatchObject({ status: 'replayed', used: 2, signature: '' });
    expect(await redis.client().zscore(chargeKey, day)).toBe('2');
    await redis.client().del(call.bucketKey);
  });

  it('replays a re-sent admission that arrives after the caller gave up', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const [seconds] = await redis.client().time();
    const { plan, call, chargeKey, day } = await admissionFor(user, Number(seconds) * 1000 + 60_000);
    await runDecide(redis.client(), plan, call);
    const late = { ...call, deadlineMs: Number(seconds) * 1000 - 1000 };
    expect(await runDecide(redis.client(), plan, late)).toMatchObject({ status: 'replayed', used: 2 });
    expect(await redis.client().zscore(chargeKey, day)).toBe('2');
    await redis.client().del(call.bucketKey);
  });

  it('refuses a copy whose bucket holds the wrong type before writing anything', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const { plan, call } = await admissionFor(user, null);
    await redis.client().set(call.bucketKey, 'not a hash');
    const before = await snapshot(redis.client(), [user]);
    expect(await runDecide(redis.client(), plan, call)).toEqual({ status: 'wrong_type', key: call.bucketKey });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
    await redis.client().del(call.bucketKey);
  });

  it('sees a changed config value of the same length, and a field that went missing', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10', soft_geocoding_limit: 'false' });
    const { plan, call } = await admissionFor(user, null);
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '90');
    expect(await runDecide(redis.client(), plan, call)).toEqual({ status: 'config_changed' });
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '10');
    // The same bytes shifted between two fields: lengths tell them apart.
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '1', 'soft_geocoding_limit', '0false');
    expect(await runDecide(redis.client(), plan, call)).toEqual({ status: 'config_changed' });
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '10', 'soft_geocoding_limit', 'false');
    await redis.client().hdel(`rails:users:${user}`, 'soft_geocoding_limit');
    expect(await runDecide(redis.client(), plan, call)).toEqual({ status: 'config_changed' });
    expect(await redis.client().exists(call.bucketKey)).toBe(0);
  });

  it('writes nothing when it runs after the caller gave up', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const [seconds] = await redis.client().time();
    const { plan, call } = await admissionFor(user, Number(seconds) * 1000 - 1000);
    const before = await snapshot(redis.client(), [user]);
    expect(await runDecide(redis.client(), plan, call)).toEqual({ status: 'expired' });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
    expect(await redis.client().exists(call.bucketKey)).toBe(0);
  });

  it('admits when the deadline is still ahead', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const [seconds] = await redis.client().time();
    const { plan, call } = await admissionFor(user, Number(seconds) * 1000 + 60_000);
    expect(await runDecide(redis.client(), plan, call)).toMatchObject({ status: 'decided', allowed: true });
    await redis.client().del(call.bucketKey);
  });
});

// The decide script on its own: a re-sent admission charges once, and a late one charges nothing.
import { describe, expect, it } from 'vitest';
import { planDecision, reservationSignature, type Reservation } from '../../src/core/accounting.js';
import { resolveAccount } from '../../src/core/config.js';
import { reservationKey } from '../../src/core/keys.js';
import { readAccount } from '../../src/redis/accounts.js';
import { defineScripts, runDecide, type DecideInput } from '../../src/redis/scripts.js';
import { snapshot, useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);

/** The exact decide command Tollgate would send to admit one geocode for `user` now. */
async function admissionFor(user: string, deadlineMs: number | null): Promise<DecideInput> {
  const client = redis.client();
  defineScripts(client);
  const { source, serverNowMs } = await readAccount(client, user);
  const account = resolveAccount(source, 'geocoding');
  const plan = planDecision(account, serverNowMs);
  const reservation: Reservation = {
    id: crypto.randomUUID(),
    user,
    org: null,
    kind: 'geocoding',
    serviceType: account.serviceType,
    yyyymm: plan.yyyymm,
    day: plan.day,
    cost: 2,
  };
  return {
    reservationKey: reservationKey(reservation.id),
    requestIdKey: null,
    fingerprint: plan.fingerprint,
    reads: plan.reads,
    chargeKeys: plan.chargeKeys,
    nowMs: null,
    dayStartMs: plan.dayStartMs,
    dayEndMs: plan.dayEndMs,
    day: plan.day,
    cost: 2,
    quota: account.quota,
    softLimit: account.softLimit,
    mode: 'consume',
    signature: reservationSignature(reservation),
    reservationTtlMs: 60_000,
    requestIdTtlMs: 60_000,
    deadlineMs,
  };
}

describe('decide.lua', () => {
  it('charges once when the same admission command reaches Redis twice (a client re-send)', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const command = await admissionFor(user, null);
    const first = await runDecide(redis.client(), command);
    const resent = await runDecide(redis.client(), command);
    expect(first).toMatchObject({ status: 'decided', allowed: true, used: 2 });
    expect(resent).toMatchObject({ status: 'replayed', used: 2, signature: command.signature });
    expect(await redis.client().zscore(command.chargeKeys[0]!, command.day)).toBe('2');
  });

  it('writes nothing when it runs after the caller gave up', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const [seconds] = await redis.client().time();
    const command = await admissionFor(user, Number(seconds) * 1000 - 1000);
    const before = await snapshot(redis.client(), [user]);
    expect(await runDecide(redis.client(), command)).toEqual({ status: 'expired' });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });

  it('admits when the deadline is still ahead', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const [seconds] = await redis.client().time();
    const command = await admissionFor(user, Number(seconds) * 1000 + 60_000);
    expect(await runDecide(redis.client(), command)).toMatchObject({ status: 'decided', allowed: true });
  });
});

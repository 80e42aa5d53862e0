// Bad input of every kind gets a typed error with a stable code and changes nothing in Redis.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CODES, Tollgate, TollgateError, type TollgateErrorCode } from '../../src/index.js';
import { cleanup, snapshot, uniqueName, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const NOW = Date.parse('2026-11-22T12:00:00Z');
let user: string;
let org: string;
let gate: Tollgate;

beforeEach(async () => {
  user = uniqueName('u');
  org = uniqueName('o');
  await writeUser(redis.client(), user, { geocoding_quota: '10' });
  gate = new Tollgate({ redis: redis.client(), clock: () => NOW });
});
afterEach(async () => cleanup(redis.client(), [user, org]));

/** Runs `action`, expects a TollgateError with `code`, and proves the keyspace did not change. */
async function refusedWithoutWrites(code: TollgateErrorCode, action: () => Promise<unknown>): Promise<TollgateError> {
  const before = await snapshot(redis.client(), [user, org]);
  const error = await action().then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TollgateError);
  expect(error).toMatchObject({ code });
  expect(await snapshot(redis.client(), [user, org])).toEqual(before);
  return error as TollgateError;
}

describe('invalid names never become keys', () => {
  it.each([
    ['empty', ''],
    ['129 characters', 'a'.repeat(129)],
    ['a colon', 'alice:admin'],
    ['a star', 'ali*'],
    ['a question mark', 'ali?e'],
    ['brackets', 'ali[ce]'],
    ['braces', '{alice}'],
    ['a space', 'ali ce'],
    ['a newline', 'alice\n'],
    ['a control character', 'ali\u0007ce'],
    ['not a string', 42],
  ])('user name with %s', async (_why, name) => {
    await refusedWithoutWrites(ERROR_CODES.invalidName, () => gate.consume({ user: name as string, kind: 'geocoding' }));
    await refusedWithoutWrites(ERROR_CODES.invalidName, () => gate.check({ user: name as string, kind: 'geocoding' }));
    await refusedWithoutWrites(ERROR_CODES.invalidName, () => gate.quota({ user: name as string, kind: 'geocoding' }));
    await refusedWithoutWrites(ERROR_CODES.invalidName, () => gate.usage({ org: name as string, kind: 'geocoding' }));
  });

  it.each(['', 'a'.repeat(129), 'id:1', 'id*', 'id 1'])('request id %j', async (requestId) => {
    await refusedWithoutWrites(ERROR_CODES.invalidRequestId, () => gate.consume({ user, kind: 'geocoding', requestId }));
  });
});

describe('nonsense amounts and kinds', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e16, '3', null])('cost %j', async (cost) => {
    await refusedWithoutWrites(ERROR_CODES.invalidCost, () => gate.consume({ user, kind: 'geocoding', cost: cost as number }));
  });

  it.each(['weather', 'Geocoding', '', 'here_isolines', '__proto__', 'constructor'])('quota kind %j', async (kind) => {
    await refusedWithoutWrites(ERROR_CODES.unknownQuotaKind, () => gate.consume({ user, kind: kind as 'geocoding' }));
  });

  it.each([['ok'], [{ success: 2 }], [{ success: 1, empty: -1, failed: 1 }]])('settlement outcome %j', async (outcome) => {
    const admission = await gate.consume({ user, kind: 'geocoding' });
    await refusedWithoutWrites(ERROR_CODES.invalidOutcome, () => gate.settle(admission.reservation!, outcome as never));
  });

  it('a request that is not an object', async () => {
    await refusedWithoutWrites(ERROR_CODES.invalidArgument, () => gate.consume(null as never));
  });
});

describe('garbled config denies and writes nothing', () => {
  it.each(['abc', '-5', '1e99', '12.5', '0x10', '99999999999999999999'])('geocoding_quota %j', async (quota) => {
    await writeUser(redis.client(), user, { geocoding_quota: quota });
    const error = await refusedWithoutWrites(ERROR_CODES.invalidConfig, () => gate.consume({ user, kind: 'geocoding' }));
    expect(error.message).toContain('geocoding_quota');
    // The message names the key (whose random part may contain anything) but never the value.
    expect(error.message.replace(`rails:users:${user}`, '')).not.toContain(quota);
  });

  it.each(['2016-10-10', 'tomorrow', '2016-02-30 00:00:00 UTC'])('period_end_date %j', async (date) => {
    await writeUser(redis.client(), user, { geocoding_quota: '10', period_end_date: date });
    await refusedWithoutWrites(ERROR_CODES.invalidConfig, () => gate.consume({ user, kind: 'geocoding' }));
  });

  it('a garbled quota on the org', async () => {
    await writeOrg(redis.client(), org, { geocoding_quota: '12.5' });
    await writeUser(redis.client(), user, { organization: org });
    await refusedWithoutWrites(ERROR_CODES.invalidConfig, () => gate.consume({ user, kind: 'geocoding' }));
  });

  it('an organization field that is not a valid name', async () => {
    await writeUser(redis.client(), user, { organization: 'acme:*' });
    await refusedWithoutWrites(ERROR_CODES.invalidConfig, () => gate.consume({ user, kind: 'geocoding' }));
  });

  it('a config key of the wrong Redis type', async () => {
    await redis.client().del(`rails:users:${user}`);
    await redis.client().set(`rails:users:${user}`, 'not a hash');
    await refusedWithoutWrites(ERROR_CODES.invalidConfig, () => gate.consume({ user, kind: 'geocoding' }));
  });

  it('a usage key of the wrong Redis type: the script checks every key before writing any', async () => {
    await redis.client().set(`user:${user}:geocoder_here:total_requests:202611`, 'oops');
    const error = await refusedWithoutWrites(ERROR_CODES.invalidConfig, () => gate.consume({ user, kind: 'geocoding' }));
    expect(error.message).toContain('total_requests');
    expect(await redis.client().exists(`user:${user}:geocoder_here:success_responses:202611`)).toBe(0);
  });
});

describe('unknown users and orgs', () => {
  it('an unknown user', async () => {
    await refusedWithoutWrites(ERROR_CODES.unknownUser, () => gate.consume({ user: uniqueName('nobody'), kind: 'geocoding' }));
  });

  it('a user whose org has no hash', async () => {
    await writeUser(redis.client(), user, { organization: org, geocoding_quota: '10' });
    await refusedWithoutWrites(ERROR_CODES.unknownOrg, () => gate.consume({ user, kind: 'geocoding' }));
    await refusedWithoutWrites(ERROR_CODES.unknownOrg, () => gate.usage({ org, kind: 'geocoding' }));
  });
});

describe('config that changes under a decision', () => {
  it('is re-read: the script refuses to act on fields that changed since they were read', async () => {
    // A Tollgate whose clock lowers the quota between the read and the script: the script
    // sees the new value, re-plans, and decides on it.
    let lowered = false;
    const racing = new Tollgate({
      redis: redis.client(),
      clock: () => {
        if (!lowered) {
          lowered = true;
          void redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '0');
        }
        return NOW;
      },
    });
    const decision = await racing.consume({ user, kind: 'geocoding' });
    expect(decision).toMatchObject({ allowed: false, quota: 0, reason: 'no_quota' });
  });
});

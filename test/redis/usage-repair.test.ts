// Garbled usage scores are found by owner and removed only while they hold what was found.
import { describe, expect, it } from 'vitest';
import { badCountProblem } from '../../src/core/counts.js';
import { Tollgate } from '../../src/index.js';
import { findGarbledScores, removeGarbledScores } from '../../src/redis/usage-repair.js';
import { snapshot, useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const month = (): string => new Date().toISOString().slice(0, 7).replace('-', '');
const today = (): string => new Date().toISOString().slice(8, 10);

describe('badCountProblem', () => {
  it.each([
    ['0', null],
    ['12', null],
    ['9007199254740991', null],
    ['-1', 'negative'],
    ['2.5', 'fractional'],
    ['1e+300', 'past 2^53 - 1'],
    ['9007199254740993', 'past 2^53 - 1'],
    ['inf', 'not a number'],
    ['-inf', 'not a number'],
  ])('%s -> %s', (score, problem) => {
    expect(badCountProblem(score)).toBe(problem);
  });
});

describe('usage repair', () => {
  it('lists only the garbled scores of one owner, removes them, and the user decides again', async () => {
    const user = name('u');
    const other = name('o');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const key = `user:${user}:geocoder_here:empty_responses:${month()}`;
    await redis.client().zadd(key, '-1000000', today(), '4', '01');
    await redis.client().zadd(`user:${other}:geocoder_here:empty_responses:${month()}`, '-5', today());
    const gate = new Tollgate({ redis: redis.client() });
    await expect(gate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({ key, field: today() });

    const found = await findGarbledScores(redis.client(), { type: 'user', name: user });
    expect(found).toEqual([{ key, member: today(), score: '-1000000', problem: 'negative' }]);
    const result = await removeGarbledScores(redis.client(), found);
    expect(result.removed).toHaveLength(1);
    expect(await redis.client().zrange(key, 0, '-1', 'WITHSCORES')).toEqual(today() === '01' ? [] : ['01', '4']);
    expect((await gate.consume({ user, kind: 'geocoding' })).allowed).toBe(true);
    expect(await findGarbledScores(redis.client(), { type: 'user', name: other })).toHaveLength(1);
  });

  it('leaves a score that changed since it was listed, writing nothing', async () => {
    const user = name('u');
    const key = `user:${user}:geocoder_here:success_responses:${month()}`;
    await redis.client().zadd(key, '2.5', today());
    const found = await findGarbledScores(redis.client(), { type: 'user', name: user });
    await redis.client().zadd(key, '3.5', today());
    const before = await snapshot(redis.client(), [user]);
    const result = await removeGarbledScores(redis.client(), found);
    expect(result).toEqual({ removed: [], skipped: found });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });

  it('refuses to remove a score that is a valid count', async () => {
    const user = name('u');
    const key = `user:${user}:geocoder_here:success_responses:${month()}`;
    await redis.client().zadd(key, '7', today());
    await expect(removeGarbledScores(redis.client(), [{ key, member: today(), score: '7', problem: 'x' }])).rejects.toMatchObject({
      code: 'ERR_TOLLGATE_INVALID_ARGUMENT',
    });
    expect(await redis.client().zscore(key, today())).toBe('7');
  });
});

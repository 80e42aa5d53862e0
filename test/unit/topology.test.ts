// Where Redis is: REDIS_URL / REDIS_CLUSTER / REDIS_SENTINELS parsed into one target, bad values refused without echoing them.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, InvalidInputError } from '../../src/index.js';
import { describeTarget, parseHostPorts, redisTargetFromEnv } from '../../src/core/redis-target.js';

const refusal = (run: () => unknown): InvalidInputError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ code: ERROR_CODES.invalidOptions });
    return error as InvalidInputError;
  }
  throw new Error('expected a refusal');
};

describe('redisTargetFromEnv', () => {
  it.each([
    [{}, null],
    [{ REDIS_URL: '' }, null],
    [{ REDIS_URL: 'redis://10.0.0.5:6380/2' }, { kind: 'single', url: 'redis://10.0.0.5:6380/2' }],
    [
      { REDIS_CLUSTER: '10.0.0.1:7000, redis-b.internal:7001,[::1]:7002' },
      { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: 'redis-b.internal', port: 7001 }, { host: '::1', port: 7002 }] },
    ],
    [
      { REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'mymaster' },
      { kind: 'sentinel', name: 'mymaster', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }] },
    ],
  ])('%j -> %j', (env, target) => {
    expect(redisTargetFromEnv(env)).toEqual(target);
  });

  it('refuses two deployments at once, naming the variables', () => {
    const error = refusal(() => redisTargetFromEnv({ REDIS_URL: 'redis://a:1', REDIS_CLUSTER: 'b:2' }));
    expect(error.message).toContain('REDIS_URL, REDIS_CLUSTER');
    refusal(() => redisTargetFromEnv({ REDIS_CLUSTER: 'b:2', REDIS_SENTINELS: 'c:3', REDIS_SENTINEL_NAME: 'm' }));
  });

  it('refuses half of the Sentinel pair', () => {
    expect(refusal(() => redisTargetFromEnv({ REDIS_SENTINELS: 's1:26379' })).message).toContain('REDIS_SENTINEL_NAME');
    refusal(() => redisTargetFromEnv({ REDIS_SENTINEL_NAME: 'mymaster' }));
    refusal(() => redisTargetFromEnv({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'my master' }));
  });

  it('refuses a REDIS_URL that is not a redis:// URL', () => {
    refusal(() => redisTargetFromEnv({ REDIS_URL: 'localhost:6379' }));
  });
});

describe('parseHostPorts', () => {
  it.each(['', 'srv', 'srv:', ':6379', 'srv:0', 'srv:65536', 'srv:12a', 'a b:1', 'redis://user:s3cret@srv:6379', 'h:1,,h:2', '-bad-:1'])(
    'refuses %j without echoing it',
    (raw) => {
      const error = refusal(() => parseHostPorts('REDIS_CLUSTER', raw));
      expect(error.message).toMatch(/^REDIS_CLUSTER: entry \d+ of \d+ is not host:port/);
      if (raw.length > 3) expect(error.message).not.toContain(raw);
      expect(error.message).not.toContain('s3cret');
    },
  );
});

describe('describeTarget', () => {
  it('never prints a password', () => {
    const line = describeTarget({ kind: 'single', url: 'redis://app:s3cret@10.0.0.5:6380/0' });
    expect(line).toBe('the Redis at redis://app:***@10.0.0.5:6380/0');
  });

  it('names cluster seeds and the Sentinel master', () => {
    expect(describeTarget({ kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 7001 }] })).toBe(
      'the Redis Cluster seeded by 10.0.0.1:7000,[::1]:7001',
    );
    expect(describeTarget({ kind: 'sentinel', name: 'mymaster', sentinels: [{ host: 's1', port: 26379 }] })).toBe(
      'the master "mymaster" of the sentinels at s1:26379',
    );
  });
});

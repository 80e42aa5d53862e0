// waitForReplicas (Redis WAIT) on a real Sentinel group: an admission is answered only once a replica has it, so a failover under load loses nothing served.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, RedisUnavailableError, Tollgate } from '../../src/index.js';
import { redisTargetFromEnv } from '../../src/core/redis-target.js';
import { closeRedis, openRedis } from '../../src/redis/topology.js';
import { LOAD_NOW, failoverUnderLoad } from '../helpers/failover-load.js';
import { uniqueName, writeUser } from '../helpers/fixtures.js';
import { useSentinelGroup } from '../helpers/redis-sentinel.js';

const group = useSentinelGroup();
const clientFromEnv = (): Redis =>
  openRedis(
    redisTargetFromEnv({
      REDIS_SENTINELS: group().sentinels.map((sentinel) => sentinel.address).join(','),
      REDIS_SENTINEL_NAME: group().masterName,
    })!,
    { timeoutMs: 2000 },
  ) as Redis;

let admin: Redis;
const users: string[] = [];
beforeAll(() => {
  admin = clientFromEnv();
});
afterAll(async () => {
  for (const user of users) {
    const keys = await admin.keys(`*${user}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await closeRedis(admin);
});
const newUser = (): string => {
  const user = uniqueName('u');
  users.push(user);
  return user;
};
const score = async (user: string, metric: string): Promise<number> =>
  Number((await admin.zscore(`user:${user}:geocoder_here:${metric}:202611`, '22')) ?? 0);

describe('waitForReplicas', () => {
  it('rejects out-of-range values at construction', () => {
    for (const waitForReplicas of [-1, 1.5, 17]) {
      expect(() => new Tollgate({ redis: admin, waitForReplicas })).toThrow(expect.objectContaining({ code: ERROR_CODES.invalidOptions }));
    }
  });

  it('answers "unavailable" when fewer replicas acknowledge than asked, and refunds the admission', async () => {
    const user = newUser();
    await writeUser(admin, user, { geocoding_quota: '10' });
    // The group has one replica: asking for two can never be met. (Whether WAIT's answer or
    // the call's timer reaches the caller first depends on the machine's load; either way the
    // admission is not answered as served, and it is refunded.)
    const gate = new Tollgate({ redis: admin, clock: () => LOAD_NOW, timeoutMs: 300, waitForReplicas: 2 });
    const error = await gate.consume({ user, kind: 'geocoding' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    await gate.close(); // waits for the background refund
    expect(await score(user, 'success_responses')).toBe(0);
    expect(await score(user, 'failed_responses')).toBe(1);
  });

  it('with one replica: 500 consumes against a quota of 50 admit exactly 50, each acknowledged', async () => {
    const user = newUser();
    await writeUser(admin, user, { geocoding_quota: '50' });
    const gate = new Tollgate({ redis: admin, clock: () => LOAD_NOW, timeoutMs: 5000, waitForReplicas: 1 });
    const results = await Promise.all(Array.from({ length: 500 }, () => gate.consume({ user, kind: 'geocoding' })));
    expect(results.filter((result) => result.allowed)).toHaveLength(50);
    expect(await score(user, 'success_responses')).toBe(50);
    // The replica already holds what was answered.
    const replicaPort = group().servers.find((server) => server.port !== admin.options.port)!.port;
    const replica = openRedis({ kind: 'single', url: `redis://127.0.0.1:${replicaPort}` }, { timeoutMs: 2000 });
    expect(await replica.zscore(`user:${user}:geocoder_here:success_responses:202611`, '22')).toBe('50');
    await closeRedis(replica);
  });

  it('a failover under load loses no served admission: served never passes the quota', async () => {
    const figures = await failoverUnderLoad({
      group: group(),
      admin,
      client: clientFromEnv,
      user: newUser(),
      quota: 6000,
      options: { waitForReplicas: 1 },
    });
    console.log(`failover under load, waitForReplicas 1: ${JSON.stringify(figures)}`);
    expect(figures.servedAfterFailover).toBeGreaterThan(0);
    expect(figures.counted).toBe(figures.quota);
    expect(figures.served).toBeLessThanOrEqual(figures.quota);
  }, 60_000);
});

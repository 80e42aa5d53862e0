// Lost replies: a consume whose answer never arrives is not left charged while the caller was told "unavailable".
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { NOOP_OBSERVER, RedisUnavailableError, Tollgate, type TollgateObserver } from '../../src/index.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { startLossyProxy } from '../helpers/proxy.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const count = async (user: string, metric: string): Promise<number> => {
  const month = new Date().toISOString().slice(0, 7).replace('-', '');
  const scores = await redis.client().zrange(`user:${user}:geocoder_here:${metric}:${month}`, 0, '-1', 'WITHSCORES');
  return scores.reduce((sum, value, i) => (i % 2 === 1 ? sum + Number(value) : sum), 0);
};

/** A Tollgate talking to the test Redis through a proxy that can lose replies; its config cached. */
async function lossyTollgate(
  observer: TollgateObserver = NOOP_OBSERVER,
): Promise<{ gate: Tollgate; proxy: Awaited<ReturnType<typeof startLossyProxy>>; done: () => Promise<void> }> {
  const proxy = await startLossyProxy(redis.url());
  // A client with ioredis defaults, as a host app would pass one: it re-sends unanswered commands on reconnect.
  const connection = new Redis(proxy.url);
  connection.on('error', () => undefined);
  const gate = new Tollgate({ redis: connection, timeoutMs: 300, configCacheMs: 60_000, observer });
  return {
    gate,
    proxy,
    done: async () => {
      await gate.close();
      connection.disconnect();
      await proxy.close();
    },
  };
}

/**
 * A user's second consume charged but lost its reply; then Redis went away (the proxy refuses
 * connections) until the refund's first attempt failed. `settleFailures` lists every settle
 * attempt that failed, as the observer saw it.
 */
async function refundDuringOutage(): Promise<Awaited<ReturnType<typeof lossyTollgate>> & { user: string; settleFailures: string[] }> {
  const user = name('u');
  await writeUser(redis.client(), user, { geocoding_quota: '10' });
  const settleFailures: string[] = [];
  const observer: TollgateObserver = {
    ...NOOP_OBSERVER,
    redisError: (event) => {
      if (event.operation === 'settle') settleFailures.push(event.reason);
    },
  };
  const lossy = await lossyTollgate(observer);
  try {
    await lossy.gate.consume({ user, kind: 'geocoding' });
    lossy.proxy.dropReplies(true);
    await expect(lossy.gate.consume({ user, kind: 'geocoding' })).rejects.toBeInstanceOf(RedisUnavailableError);
    lossy.proxy.dropReplies(false);
    lossy.proxy.refuseConnections(true);
    await vi.waitFor(() => expect(settleFailures).toHaveLength(1), { timeout: 5_000, interval: 20 });
  } catch (error) {
    await lossy.done();
    throw error;
  }
  return { ...lossy, user, settleFailures };
}

describe('a consume whose reply is lost', () => {
  it('is refunded once Redis is reachable again: answered "unavailable" means not charged', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const { gate, proxy, done } = await lossyTollgate();
    try {
      await gate.consume({ user, kind: 'geocoding' }); // reads and caches the config
      proxy.dropReplies(true);
      const lost = await gate.consume({ user, kind: 'geocoding' }).catch((error: unknown) => error);
      expect(lost).toBeInstanceOf(RedisUnavailableError);
      // The script did run: Redis charged it, though its answer never came back.
      expect(await count(user, 'success_responses')).toBe(2);
      // The network heals the way networks do: the connection breaks and the client reconnects.
      proxy.dropReplies(false);
      proxy.cutConnections();
      await vi.waitFor(async () => expect(await count(user, 'failed_responses')).toBe(1), { timeout: 10_000, interval: 50 });
      expect(await count(user, 'success_responses')).toBe(1);
      expect(await count(user, 'total_requests')).toBe(2);
    } finally {
      await done();
    }
  });

  it('is refunded once Redis is back without polling it meanwhile: one attempt while it is away', async () => {
    const { user, settleFailures, proxy, done } = await refundDuringOutage();
    try {
      // The refund's first attempt failed; then it waits for the connection: polling would have
      // tried again after 100, 200 and 400 ms.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(settleFailures).toHaveLength(1);
      proxy.refuseConnections(false);
      await vi.waitFor(async () => expect(await count(user, 'failed_responses')).toBe(1), { timeout: 10_000, interval: 50 });
      expect(await count(user, 'success_responses')).toBe(1);
      expect(await count(user, 'total_requests')).toBe(2);
    } finally {
      await done();
    }
    // Once, though both the attempt queued while Redis was away and the refund's retry reached it.
    expect(await count(user, 'failed_responses')).toBe(1);
  });

  it('close() ends a refund waiting for Redis: one more attempt, and the charge stays', async () => {
    const { user, settleFailures, gate, done } = await refundDuringOutage();
    try {
      // The refund would wait up to the settle window (5 minutes) for Redis; close() releases it.
      await gate.close();
      expect(settleFailures).toHaveLength(2);
    } finally {
      await done();
    }
    // Never refunded: charged, which never lets usage pass a quota.
    expect(await count(user, 'success_responses')).toBe(2);
    expect(await count(user, 'failed_responses')).toBe(0);
  });

  it('with a request id stays charged: the retry gets the original admission instead', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const { gate, proxy, done } = await lossyTollgate();
    try {
      await gate.consume({ user, kind: 'geocoding' });
      proxy.dropReplies(true);
      const lost = await gate.consume({ user, kind: 'geocoding', requestId: 'job-1' }).catch((error: unknown) => error);
      expect(lost).toBeInstanceOf(RedisUnavailableError);
      proxy.dropReplies(false);
      proxy.cutConnections();
      const retry = await vi.waitFor(() => gate.consume({ user, kind: 'geocoding', requestId: 'job-1' }), { timeout: 10_000, interval: 100 });
      expect(retry).toMatchObject({ allowed: true, replayed: true, used: 2 });
      await gate.close();
      expect(await count(user, 'success_responses')).toBe(2);
      expect(await count(user, 'failed_responses')).toBe(0);
    } finally {
      await done();
    }
  });
});

// Connections: a Redis that is down or stalled gives a typed error within the timeout, never a hang; the server clock rules.
import { Redis, ReplyError } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { ERROR_CODES, InvalidInputError, NOOP_OBSERVER, RedisUnavailableError, Tollgate, type TollgateObserver } from '../../src/index.js';
import { toTollgateError } from '../../src/redis/connection.js';
import { ReadyWait } from '../../src/redis/watch.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { freePort, useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);

describe('Redis unreachable', () => {
  it('rejects with ERR_TOLLGATE_REDIS_UNAVAILABLE when nothing listens', async () => {
    const port = await freePort();
    const gate = new Tollgate({ redis: `redis://127.0.0.1:${port}`, timeoutMs: 200 });
    try {
      const error = await gate.consume({ user: 'alice', kind: 'geocoding' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ code: ERROR_CODES.redisUnavailable });
    } finally {
      await gate.close();
    }
  });

  it('rejects instead of hanging when Redis stops answering', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const connection = new Redis(redis.url());
    const gate = new Tollgate({ redis: connection, timeoutMs: 150 });
    try {
      await redis.client().call('CLIENT', 'PAUSE', '1000', 'ALL');
      const error = await gate.consume({ user, kind: 'geocoding' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect((error as Error).message).toContain('150 ms');
    } finally {
      await redis.client().call('CLIENT', 'UNPAUSE');
    }
    // The stalled commands run once Redis answers again; the caller was told "unavailable",
    // so none of them may charge anything.
    await connection.ping();
    await connection.ping();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await connection.ping();
    expect(await redis.client().keys(`user:${user}:*`)).toEqual([]);
    connection.disconnect();
  });
});

describe('one clock', () => {
  it("decides the day from the Redis server's clock by default", async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const [seconds] = await redis.client().time();
    const serverDay = new Date(Number(seconds) * 1000);
    const admission = await new Tollgate({ redis: redis.client() }).consume({ user, kind: 'geocoding' });
    const month = `${serverDay.getUTCFullYear()}${String(serverDay.getUTCMonth() + 1).padStart(2, '0')}`;
    const day = String(serverDay.getUTCDate()).padStart(2, '0');
    expect(admission.reservation).toMatchObject({ yyyymm: month, day });
    expect(await redis.client().zscore(`user:${user}:geocoder_here:success_responses:${month}`, day)).toBe('1');
  });

  it('lets tests inject a clock', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = new Tollgate({ redis: redis.client(), clock: () => Date.parse('2019-01-05T00:00:00Z') });
    expect((await gate.consume({ user, kind: 'geocoding' })).reservation).toMatchObject({ yyyymm: '201901', day: '05' });
  });
});

describe('options', () => {
  it.each([
    [{ redis: 'http://localhost' }],
    [{ redis: 42 }],
    [{ redis: 'redis://localhost', timeoutMs: 0 }],
    [{ redis: 'redis://localhost', timeoutMs: 1.5 }],
    [{ redis: 'redis://localhost', requestIdTtlMs: -1 }],
    [{ redis: 'redis://localhost', clock: 'now' }],
    [{ redis: 'redis://localhost', timeout: 1000 }],
  ])('rejects %j at construction', (options) => {
    expect(() => new Tollgate(options as never)).toThrow(InvalidInputError);
    expect(() => new Tollgate(options as never)).toThrow(expect.objectContaining({ code: ERROR_CODES.invalidOptions }));
  });
});

describe('Redis refusals', () => {
  // Redis ran nothing of a command it answers so: the caller may retry. A slot redirection
  // reaches Tollgate only when ioredis did not follow it (a pipeline with TIME in it).
  it.each(['READONLY You can\'t write against a read only replica.', 'CLUSTERDOWN The cluster is down', 'MOVED 3999 127.0.0.1:7001', 'ASK 3999 127.0.0.1:7002', 'TRYAGAIN Multiple keys request during rehashing of slot'])(
    '%s is ERR_TOLLGATE_REDIS_UNAVAILABLE',
    (message) => {
      const error = toTollgateError(new ReplyError(message));
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error.cause).toBeInstanceOf(ReplyError);
    },
  );

  it('any other refusal is ERR_TOLLGATE_UNEXPECTED_REPLY (a bug), even one that starts like a redirection', () => {
    for (const message of ['ERR unknown command', 'MOVEDX 1 2', 'ASKING is not allowed here']) {
      expect(toTollgateError(new ReplyError(message))).toMatchObject({ code: ERROR_CODES.unexpectedReply });
    }
  });
});

describe('listeners on a shared client', () => {
  it('Tollgates sharing a client add one listener per event between them, and the last closed removes it', async () => {
    const client = new Redis(redis.url());
    client.on('error', () => undefined);
    try {
      const count = (): number[] => ['error', 'ready', 'close', 'end'].map((event) => client.listenerCount(event));
      const before = count();
      const gates = Array.from({ length: 20 }, () => new Tollgate({ redis: client }));
      // One listener each for errors and for the connection coming back, however many share it.
      expect(count()).toEqual([before[0]! + 1, before[1]! + 1, before[2], before[3]]);
      await Promise.all(gates.slice(1).map((gate) => gate.close()));
      expect(count()).toEqual([before[0]! + 1, before[1]! + 1, before[2], before[3]]);
      await gates[0]!.close();
      expect(count()).toEqual(before);
    } finally {
      client.disconnect();
    }
  });

  it('each Tollgate on a shared client hears its connection errors until it is closed', async () => {
    const client = new Redis(redis.url());
    client.on('error', () => undefined);
    const heard: string[] = [];
    const observer = (who: string): TollgateObserver => ({ ...NOOP_OBSERVER, redisError: (event) => heard.push(`${who}: ${event.operation} ${event.message}`) });
    const first = new Tollgate({ redis: client, observer: observer('first') });
    const second = new Tollgate({ redis: client, observer: observer('second') });
    try {
      client.emit('error', new Error('connect ECONNREFUSED'));
      await first.close();
      client.emit('error', new Error('connect ETIMEDOUT'));
      expect(heard).toEqual(['first: connection connect ECONNREFUSED', 'second: connection connect ECONNREFUSED', 'second: connection connect ETIMEDOUT']);
    } finally {
      await second.close();
      client.disconnect();
    }
  });


  it('lets many wait for the connection with one listener, wakes them all when it is ready, and releases on close', async () => {
    const client = new Redis(redis.url(), { lazyConnect: true });
    client.on('error', () => undefined);
    const ready = new ReadyWait(client);
    try {
      expect(ready.ready).toBe(false);
      const before = client.listenerCount('ready');
      let woken = 0;
      const waits = Array.from({ length: 100 }, () => ready.wait(60_000).then(() => void (woken += 1)));
      expect(client.listenerCount('ready')).toBe(before + 1);
      await client.connect();
      await Promise.all(waits);
      expect(woken).toBe(100);
      // Connected: a wait ends at once.
      await ready.wait(60_000);

      client.disconnect();
      await vi.waitFor(() => expect(ready.ready).toBe(false));
      // Disconnected: a wait ends at its time limit...
      await ready.wait(20);
      // ...or on release, and every later one at once.
      const held = ready.wait(60_000);
      ready.release();
      await held;
      await ready.wait(60_000);
    } finally {
      client.disconnect();
    }
  });
});

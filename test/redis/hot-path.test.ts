// The common path costs one Redis command, keeps every guarantee, and leaves little behind in Redis.
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/api-keys.js';
import { reservationSlot } from '../../src/core/keys.js';
import { AuthenticationError, ERROR_CODES, Tollgate } from '../../src/index.js';
import { snapshot, useNames, writeUser } from '../helpers/fixtures.js';
import { countingClient } from '../helpers/counting-client.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const opened: Array<{ gate: Tollgate; client: Redis }> = [];

/** A Tollgate on a client of its own whose every command sent is recorded by name. */
function countingTollgate(options: Partial<ConstructorParameters<typeof Tollgate>[0]> = {}): { gate: Tollgate; sent: string[] } {
  const { client, sent } = countingClient(redis.url());
  const gate = new Tollgate({ redis: client, ...options });
  opened.push({ gate, client });
  return { gate, sent };
}

afterAll(async () => {
  for (const { gate, client } of opened) {
    await gate.close();
    client.disconnect();
  }
});

async function counted(user: string, metric = 'success_responses'): Promise<number> {
  const keys = await redis.client().keys(`user:${user}:*:${metric}:*`);
  let total = 0;
  for (const key of keys) {
    const flat = await redis.client().zrange(key, 0, '-1', 'WITHSCORES');
    for (let i = 1; i < flat.length; i += 2) total += Number(flat[i]);
  }
  return total;
}

describe('one round trip', () => {
  it('an authenticated, admitted consume whose config is cached sends exactly one command: the decide script', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '1000', map_key: 'k-secret-1' });
    const { gate, sent } = countingTollgate();
    await gate.consume({ user, kind: 'geocoding', apiKey: 'k-secret-1' }); // reads and caches the config
    sent.length = 0;
    for (let i = 0; i < 50; i += 1) {
      const admission = await gate.consume({ user, kind: 'geocoding', apiKey: 'k-secret-1' });
      expect(admission.allowed).toBe(true);
    }
    expect(sent).toEqual(Array(50).fill('evalsha'));
    expect(await counted(user)).toBe(51);
  });

  it('settles made at the same moment go to Redis in one script call', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '1000' });
    const { gate, sent } = countingTollgate();
    const admissions = await Promise.all(Array.from({ length: 40 }, () => gate.consume({ user, kind: 'geocoding' })));
    sent.length = 0;
    const results = await Promise.all(admissions.map((a) => (a.allowed ? gate.settle(a.reservation, 'failed') : null)));
    expect(results.every((r) => r?.status === 'settled')).toBe(true);
    expect(sent).toEqual(['evalsha']);
    expect(await counted(user)).toBe(0);
    expect(await counted(user, 'failed_responses')).toBe(40);
  });
});

describe('API keys inside the consume', () => {
  it('refuses a key revoked a moment ago although the config is cached', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100', api_key_sha256: sha256Hex('key-one') });
    const { gate } = countingTollgate({ configCacheMs: 60_000 });
    expect((await gate.consume({ user, kind: 'geocoding', apiKey: 'key-one' })).allowed).toBe(true);
    await redis.client().hdel(`rails:users:${user}`, 'api_key_sha256');
    const before = await snapshot(redis.client(), [user]);
    await expect(gate.consume({ user, kind: 'geocoding', apiKey: 'key-one' })).rejects.toBeInstanceOf(AuthenticationError);
    expect(await snapshot(redis.client(), [user])).toEqual(before);
    expect(await counted(user)).toBe(1);
  });

  it('never sends an API key to Redis: the decision re-checks key fields by digest (ARGV shows in MONITOR and SLOWLOG)', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100', map_key: 'carto-secret-map-key' });
    const { gate } = countingTollgate();
    const monitor = await redis.client().monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.join(' ')));
    try {
      await gate.consume({ user, kind: 'geocoding', apiKey: 'carto-secret-map-key' });
      await gate.consume({ user, kind: 'geocoding', apiKey: 'carto-secret-map-key' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      monitor.disconnect();
    }
    expect(seen.some((line) => line.includes('evalsha'))).toBe(true);
    expect(seen.filter((line) => line.includes('carto-secret-map-key'))).toEqual([]);
  });

  it('accepts a key created a moment ago although the cached config does not list it', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100', map_key: 'old-key' });
    const { gate } = countingTollgate({ configCacheMs: 60_000 });
    await gate.consume({ user, kind: 'geocoding', apiKey: 'old-key' });
    await redis.client().hset(`rails:users:${user}`, 'api_key_sha256:ci', sha256Hex('new-key'));
    expect((await gate.consume({ user, kind: 'geocoding', apiKey: 'new-key' })).allowed).toBe(true);
  });

  it('refuses a rotated key once its overlap ends, and never before', async () => {
    const user = name('u');
    const [seconds] = await redis.client().time();
    const nowMs = Number(seconds) * 1000;
    await writeUser(redis.client(), user, {
      geocoding_quota: '100',
      'api_key_sha256:main': sha256Hex('rotating'),
      'api_key_expires_at:main': String(nowMs + 60_000),
    });
    const { gate } = countingTollgate();
    expect((await gate.consume({ user, kind: 'geocoding', apiKey: 'rotating' })).allowed).toBe(true);
    await redis.client().hset(`rails:users:${user}`, 'api_key_expires_at:main', String(nowMs - 1));
    await expect(gate.consume({ user, kind: 'geocoding', apiKey: 'rotating' })).rejects.toMatchObject({ code: ERROR_CODES.unauthorized });
  });

  it('answers an unknown user and a wrong key alike, with the same Redis work', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100', map_key: 'right' });
    const { gate, sent } = countingTollgate();
    await gate.consume({ user, kind: 'geocoding', apiKey: 'right' }); // cached, as a busy user is
    sent.length = 0;
    const wrong = await gate.consume({ user, kind: 'geocoding', apiKey: 'wrong' }).catch((error: unknown) => error);
    const wrongCommands = sent.splice(0);
    const unknown = await gate.consume({ user: name('ghost'), kind: 'geocoding', apiKey: 'wrong' }).catch((error: unknown) => error);
    const unknownCommands = sent.splice(0);
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect(unknown).toBeInstanceOf(AuthenticationError);
    expect((wrong as Error).message).toBe((unknown as Error).message);
    expect(wrongCommands.length).toBe(unknownCommands.length);
    expect(wrongCommands).toEqual(["hgetall", "time"]); // one round trip, the org never read
  });
});

describe('request ids', () => {
  it('refuses a repeat that asks for another kind, with nothing charged', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10', here_isolines_quota: '0' });
    const { gate } = countingTollgate();
    expect((await gate.consume({ user, kind: 'geocoding', cost: 1, requestId: 'X' })).allowed).toBe(true);
    const before = await snapshot(redis.client(), [user]);
    await expect(gate.consume({ user, kind: 'isolines', cost: 5, requestId: 'X' })).rejects.toMatchObject({
      code: ERROR_CODES.requestIdReused,
    });
    await expect(gate.consume({ user, kind: 'geocoding', cost: 100, requestId: 'X' })).rejects.toMatchObject({
      code: ERROR_CODES.requestIdReused,
    });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
    const replay = await gate.consume({ user, kind: 'geocoding', cost: 1, requestId: 'X' });
    expect(replay).toMatchObject({ allowed: true, replayed: true, used: 1 });
  });
});

describe('counters Tollgate could not have written', () => {
  const month = (): string => new Date().toISOString().slice(0, 7).replace('-', '');
  const today = (): string => new Date().toISOString().slice(8, 10);

  it('bounds the cost of one call', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { soft_geocoding_limit: 'true' });
    const { gate } = countingTollgate();
    const before = await snapshot(redis.client(), [user]);
    await expect(gate.consume({ user, kind: 'geocoding', cost: 1e15 })).rejects.toMatchObject({ code: ERROR_CODES.invalidCost });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });

  it('refuses before writing what would take a counter past 2^53 - 1, and keeps deciding afterwards', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { soft_geocoding_limit: 'true' });
    const key = `user:${user}:geocoder_here:total_requests:${month()}`;
    await redis.client().zadd(key, String(2 ** 53 - 10), today());
    const { gate } = countingTollgate();
    const before = await snapshot(redis.client(), [user]);
    await expect(gate.consume({ user, kind: 'geocoding', cost: 20 })).rejects.toMatchObject({ code: ERROR_CODES.counterLimit, key });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
    expect((await gate.consume({ user, kind: 'geocoding', cost: 9 })).allowed).toBe(true);
    expect((await gate.check({ user, kind: 'geocoding' })).allowed).toBe(true);
  });

  it.each([
    ['a negative score', '-1000000'],
    ['a huge score', '1e300'],
    ['a fractional score', '2.5'],
  ])('treats %s in a counted key as garbled config: typed error naming the key, nothing written', async (_, score) => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const key = `user:${user}:geocoder_here:empty_responses:${month()}`;
    await redis.client().zadd(key, score, today());
    const { gate } = countingTollgate();
    const before = await snapshot(redis.client(), [user]);
    await expect(gate.consume({ user, kind: 'geocoding', cost: 1000 })).rejects.toMatchObject({
      code: ERROR_CODES.invalidConfig,
      key,
      field: today(),
    });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
    // Repaired, it counts at once: nothing cached keeps the error alive.
    await redis.client().zadd(key, '3', today());
    expect(await gate.consume({ user, kind: 'geocoding', cost: 10 })).toMatchObject({ allowed: true, used: 13 });
  });
});

describe('settlement leaves no litter', () => {
  it('an empty settle moves the whole charge and leaves no 0-score member behind', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const { gate } = countingTollgate();
    const admission = await gate.consume({ user, kind: 'geocoding', cost: 2 });
    if (!admission.allowed) throw new Error('expected an admission');
    await gate.settle(admission.reservation, 'empty');
    const success = await redis.client().keys(`user:${user}:*:success_responses:*`);
    for (const key of success) expect(await redis.client().zrange(key, 0, '-1', 'WITHSCORES')).toEqual([]);
    expect(await counted(user, 'empty_responses')).toBe(2);
  });

  it('a reservation costs under 64 bytes of Redis in a listpack bucket, and its bucket expires with the settle window', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100000' });
    const { gate } = countingTollgate({ reservationTtlMs: 120_000 });
    const admissions = [];
    for (let round = 0; round < 8; round += 1) {
      admissions.push(...(await Promise.all(Array.from({ length: 80 }, () => gate.consume({ user, kind: 'geocoding' })))));
    }
    const buckets = new Set(admissions.map((a) => reservationSlot(a.reservation!.id).key));
    let bytes = 0;
    for (const key of buckets) {
      expect(await redis.client().object('ENCODING', key)).toBe('listpack');
      bytes += Number(await redis.client().memory('USAGE', key));
      const ttl = await redis.client().pttl(key);
      expect(ttl).toBeGreaterThan(119_000);
      expect(ttl).toBeLessThanOrEqual(180_000);
    }
    expect(bytes / admissions.length).toBeLessThan(64);
  });
});

describe('options', () => {
  it('refuse a settle window shorter than the call timeout (a late write could outlive its bucket)', () => {
    expect(() => new Tollgate({ redis: redis.client(), timeoutMs: 5000, reservationTtlMs: 2000 })).toThrow(
      expect.objectContaining({ code: ERROR_CODES.invalidOptions, message: expect.stringContaining('reservationTtlMs') }),
    );
  });
});

describe('the config cache and garbled config', () => {
  it('refuses a field garbled under a cached config at once, and serves again the moment it is repaired', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const { gate } = countingTollgate({ configCacheMs: 60_000 });
    expect((await gate.consume({ user, kind: 'geocoding' })).allowed).toBe(true);
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', 'abc');
    await expect(gate.consume({ user, kind: 'geocoding' })).rejects.toMatchObject({ code: ERROR_CODES.invalidConfig, field: 'geocoding_quota' });
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '100');
    expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, used: 2 });
  });
});

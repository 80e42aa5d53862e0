// Races: many concurrent consumes from several connections never pass a hard quota and count exactly.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tollgate, type Admission } from '../../src/index.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const NOW = Date.parse('2026-11-22T12:00:00Z');
const SERVERS = 4; // independent connections, as several app servers would have
const name = useNames(redis.client);

let connections: Redis[] = [];
let servers: Tollgate[] = [];
beforeAll(() => {
  connections = Array.from({ length: SERVERS }, () => new Redis(redis.url()));
  servers = connections.map((connection) => new Tollgate({ redis: connection, clock: () => NOW, timeoutMs: 30_000 }));
});
afterAll(() => connections.forEach((connection) => connection.disconnect()));

const score = async (key: string): Promise<number> => Number((await redis.client().zscore(key, '22')) ?? 0);
const race = (count: number, consume: (server: Tollgate, index: number) => Promise<Admission>): Promise<Admission[]> =>
  Promise.all(Array.from({ length: count }, (_, index) => consume(servers[index % SERVERS]!, index)));

describe('concurrent consumes', () => {
  it('1,000 consumes against a hard quota of 100 admit exactly 100 and count exactly 100', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const results = await race(1000, (server) => server.consume({ user, kind: 'geocoding' }));
    expect(results.filter((r) => r.allowed)).toHaveLength(100);
    expect(results.filter((r) => !r.allowed).every((r) => r.reason === 'quota_exceeded')).toBe(true);
    expect(await score(`user:${user}:geocoder_here:success_responses:202611`)).toBe(100);
    expect(await score(`user:${user}:geocoder_here:total_requests:202611`)).toBe(100);
    // every admitted request saw a distinct usage figure: 1..100, each exactly once
    expect(results.filter((r) => r.allowed).map((r) => r.used).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  it('an org of 10 members spending one pool of 100 admits exactly 100 in all', async () => {
    const org = name('o');
    const members = Array.from({ length: 10 }, () => name('u'));
    await writeOrg(redis.client(), org, { geocoding_quota: '100' });
    for (const member of members) await writeUser(redis.client(), member, { organization: org, geocoding_quota: '1000' });
    const results = await race(1000, (server, i) => server.consume({ user: members[i % 10]!, kind: 'geocoding' }));
    const admitted = results.filter((r) => r.allowed);
    expect(admitted).toHaveLength(100);
    expect(await score(`org:${org}:geocoder_here:success_responses:202611`)).toBe(100);
    let perUser = 0;
    for (const member of members) {
      const counted = await score(`user:${member}:geocoder_here:success_responses:202611`);
      expect(counted).toBe(admitted.filter((r) => r.user === member).length);
      perUser += counted;
    }
    expect(perUser).toBe(100);
  });

  it('bulk costs racing never overshoot: 300 consumes of cost 7 against 1,000 admit exactly 142', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '1000' });
    const results = await race(300, (server) => server.consume({ user, kind: 'geocoding', cost: 7 }));
    expect(results.filter((r) => r.allowed)).toHaveLength(Math.floor(1000 / 7));
    expect(await score(`user:${user}:geocoder_here:success_responses:202611`)).toBe(994);
  });

  it('soft-limited users are always admitted and counted', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10', soft_geocoding_limit: 'true' });
    const results = await race(500, (server) => server.consume({ user, kind: 'geocoding' }));
    expect(results.every((r) => r.allowed && r.reason === 'soft_limit')).toBe(true);
    expect(await score(`user:${user}:geocoder_here:success_responses:202611`)).toBe(500);
  });

  it('consumes racing with refunds: counted usage never passes the quota and every unit is accounted once', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '100' });
    const outcomes = ['success', 'empty', 'failed'] as const;
    let admittedSoFar = 0;
    const settled: string[] = [];
    // Ten waves of 100 concurrent requests: refunds from one wave free room for the next.
    for (let wave = 0; wave < 10; wave += 1) {
      settled.push(
        ...(await Promise.all(
          Array.from({ length: 100 }, async (_, i) => {
            const server = servers[i % SERVERS]!;
            const admission = await server.consume({ user, kind: 'geocoding' });
            if (!admission.allowed) return 'denied';
            const outcome = outcomes[admittedSoFar++ % 3]!;
            await server.settle(admission.reservation!, outcome);
            return outcome;
          }),
        )),
      );
    }
    const count = (what: string): number => settled.filter((s) => s === what).length;
    const success = await score(`user:${user}:geocoder_here:success_responses:202611`);
    const empty = await score(`user:${user}:geocoder_here:empty_responses:202611`);
    const failed = await score(`user:${user}:geocoder_here:failed_responses:202611`);
    expect(success).toBe(count('success'));
    expect(empty).toBe(count('empty'));
    expect(failed).toBe(count('failed'));
    expect(success + empty).toBeLessThanOrEqual(100);
    expect(await score(`user:${user}:geocoder_here:total_requests:202611`)).toBe(success + empty + failed);
    // refunds free room: more than 100 requests were admitted in all
    expect(success + empty + failed).toBeGreaterThan(100);
  });
});

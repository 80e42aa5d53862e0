// Exactly once: idempotent retries, settling once, crashes between admit and settle, SCRIPT FLUSH.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ReservationError, Tollgate } from '../../src/index.js';
import { reservationSlot } from '../../src/core/keys.js';
import { snapshot, useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const NOW = Date.parse('2026-11-22T12:00:00Z');
const name = useNames(redis.client);
const tollgate = (options: { requestIdTtlMs?: number; reservationTtlMs?: number } = {}): Tollgate =>
  new Tollgate({ redis: redis.client(), clock: () => NOW, ...options });
const counted = async (user: string, metric = 'success_responses'): Promise<number> =>
  Number((await redis.client().zscore(`user:${user}:geocoder_here:${metric}:202611`, '22')) ?? 0);


describe('request ids', () => {
  it('a retried consume with the same id counts once and returns the same reservation', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = tollgate();
    const first = await gate.consume({ user, kind: 'geocoding', cost: 3, requestId: 'req-1' });
    const retry = await gate.consume({ user, kind: 'geocoding', cost: 3, requestId: 'req-1' });
    expect(first).toMatchObject({ allowed: true, replayed: false, used: 3 });
    expect(retry).toMatchObject({ allowed: true, replayed: true, used: 3 });
    expect(retry.reservation).toEqual(first.reservation);
    expect(await counted(user)).toBe(3);
    expect(await counted(user, 'total_requests')).toBe(3);
  });

  it('100 concurrent retries of one id count once', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '1000' });
    const gate = tollgate();
    const results = await Promise.all(
      Array.from({ length: 100 }, () => gate.consume({ user, kind: 'geocoding', requestId: 'only-once' })),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(new Set(results.map((r) => r.reservation?.id)).size).toBe(1);
    expect(await counted(user)).toBe(1);
  });

  it('ids are per user, and different ids count separately', async () => {
    const [ann, ben] = [name('u'), name('u')];
    await writeUser(redis.client(), ann, { geocoding_quota: '10' });
    await writeUser(redis.client(), ben, { geocoding_quota: '10' });
    const gate = tollgate();
    await gate.consume({ user: ann, kind: 'geocoding', requestId: 'same' });
    await gate.consume({ user: ben, kind: 'geocoding', requestId: 'same' });
    await gate.consume({ user: ann, kind: 'geocoding', requestId: 'other' });
    expect(await counted(ann)).toBe(2);
    expect(await counted(ben)).toBe(1);
  });

  it('remembers an id for the configured window, then counts it again', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = tollgate({ requestIdTtlMs: 60_000 });
    await gate.consume({ user, kind: 'geocoding', requestId: 'windowed' });
    const ttl = await redis.client().pttl(`tollgate:request:${user}:windowed`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // the window ends: Redis expires the id (made to happen now rather than waited for)
    await redis.client().del(`tollgate:request:${user}:windowed`);
    expect((await gate.consume({ user, kind: 'geocoding', requestId: 'windowed' })).replayed).toBe(false);
    expect(await counted(user)).toBe(2);
  });

  it('defaults the window to 24 hours', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    await tollgate().consume({ user, kind: 'geocoding', requestId: 'day' });
    const ttl = await redis.client().pttl(`tollgate:request:${user}:day`);
    expect(ttl).toBeGreaterThan(23 * 3_600_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3_600_000);
  });

  it('does not remember denied requests: a retry is judged again', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '0' });
    const gate = tollgate();
    expect((await gate.consume({ user, kind: 'geocoding', requestId: 'later' })).allowed).toBe(false);
    await redis.client().hset(`rails:users:${user}`, 'geocoding_quota', '5');
    expect(await gate.consume({ user, kind: 'geocoding', requestId: 'later' })).toMatchObject({ allowed: true, replayed: false });
  });
});

describe('settling exactly once', () => {
  it('a second settle of the same reservation changes nothing', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = tollgate();
    const admission = await gate.consume({ user, kind: 'geocoding', cost: 2 });
    expect(await gate.settle(admission.reservation!, 'failed')).toEqual({ status: 'settled' });
    const after = await snapshot(redis.client(), [user]);
    expect(await gate.settle(admission.reservation!, 'failed')).toEqual({ status: 'already_settled' });
    expect(await gate.settle(admission.reservation!, 'success')).toEqual({ status: 'already_settled' });
    expect(await snapshot(redis.client(), [user])).toEqual(after);
    expect(await counted(user, 'failed_responses')).toBe(2);
  });

  it('50 concurrent settles of one reservation apply once', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = tollgate();
    const admission = await gate.consume({ user, kind: 'geocoding', cost: 4 });
    const results = await Promise.all(Array.from({ length: 50 }, () => gate.settle(admission.reservation!, 'failed')));
    expect(results.filter((r) => r.status === 'settled')).toHaveLength(1);
    expect(await counted(user)).toBe(0);
    expect(await counted(user, 'failed_responses')).toBe(4);
  });

  it('refuses a reservation whose contents were altered, writing nothing', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = tollgate();
    const admission = await gate.consume({ user, kind: 'geocoding', cost: 5 });
    const before = await snapshot(redis.client(), [user]);
    await expect(gate.settle({ ...admission.reservation!, cost: 50 }, 'failed')).rejects.toMatchObject({
      code: ERROR_CODES.unknownReservation,
    });
    const otherField = admission.reservation!.id.replace(/\.[0-9a-z]+$/, '.zz');
    await expect(gate.settle({ ...admission.reservation!, id: otherField }, 'failed')).rejects.toBeInstanceOf(ReservationError);
    await expect(gate.settle({ ...admission.reservation!, org: 'someorg' }, 'failed')).rejects.toBeInstanceOf(ReservationError);
    await expect(gate.settle({ ...admission.reservation!, id: crypto.randomUUID() }, 'failed')).rejects.toMatchObject({
      code: ERROR_CODES.invalidArgument,
    });
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });
});

describe('a process that dies between admit and settle', () => {
  it('leaves the charge in place, so the hard quota still holds', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '3' });
    const crashed = tollgate();
    for (let i = 0; i < 3; i += 1) expect((await crashed.consume({ user, kind: 'geocoding' })).allowed).toBe(true);
    // ...the process dies here: nothing is ever settled. Another server carries on.
    const survivor = tollgate();
    expect(await survivor.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: false, used: 3 });
    expect(await counted(user)).toBe(3);
  });

  it('a settle after the reservation expired is refused and the charge stays', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '3' });
    const gate = tollgate({ reservationTtlMs: 60_000 });
    const admission = await gate.consume({ user, kind: 'geocoding' });
    const { key } = reservationSlot(admission.reservation!.id);
    // The bucket outlives the window by at most its one-minute slot.
    expect(await redis.client().pttl(key)).toBeGreaterThan(59_000);
    expect(await redis.client().pttl(key)).toBeLessThanOrEqual(120_000);
    await redis.client().del(key); // what expiry does, made to happen now
    await expect(gate.settle(admission.reservation!, 'failed')).rejects.toMatchObject({ code: ERROR_CODES.unknownReservation });
    expect(await counted(user)).toBe(1);
    expect(await counted(user, 'failed_responses')).toBe(0);
  });
});

describe('script cache', () => {
  it('keeps working after SCRIPT FLUSH (ioredis falls back to EVAL and reloads)', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const gate = tollgate();
    const first = await gate.consume({ user, kind: 'geocoding' });
    await redis.client().script('FLUSH');
    expect(await redis.client().script('EXISTS', '0000000000000000000000000000000000000000')).toEqual([0]);
    const second = await gate.consume({ user, kind: 'geocoding' });
    expect(second).toMatchObject({ allowed: true, used: 2 });
    await redis.client().script('FLUSH');
    expect(await gate.settle(first.reservation!, 'failed')).toEqual({ status: 'settled' });
    expect(await counted(user)).toBe(1);
  });
});

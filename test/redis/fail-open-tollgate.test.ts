// FailOpenTollgate for consume() callers: local admissions while Redis is away, batched exactly-once write-back, decisions that never miss the journal.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FailOpenTollgate, NOOP_OBSERVER, RedisUnavailableError, Tollgate, connectForFailOpen, type FailOpenAdmission, type TollgateObserver } from '../../src/index.js';
import { uniqueName, writeOrg, writeUser } from '../helpers/fixtures.js';
import { RestartableRedis } from '../helpers/restartable-redis.js';

let redis: RestartableRedis;
let client: Redis;
let tollgate: Tollgate;
let admin: Redis;
const warnings: string[] = [];

beforeAll(async () => {
  redis = await RestartableRedis.start();
  client = await connectForFailOpen(redis.url, 300);
  client.on('error', () => undefined);
  tollgate = new Tollgate({ redis: client, timeoutMs: 300 });
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
});
afterAll(async () => {
  client?.disconnect();
  admin?.disconnect();
  await redis?.dispose();
});

/** A fail-open client whose journal writes back only when asked (or before a decision). */
const failOpenClient = (options: { journalMaxEntries?: number } = {}): FailOpenTollgate =>
  new FailOpenTollgate({ tollgate, flushIntervalMs: 60_000, timeoutMs: 1000, log: (m) => warnings.push(m), ...options });

async function outage(): Promise<void> {
  await redis.stop();
  await vi.waitFor(() => expect(client.status).not.toBe('ready'));
}

async function backAgain(): Promise<void> {
  await redis.start();
  await vi.waitFor(() => expect(client.status).toBe('ready'), { timeout: 10_000, interval: 20 });
}

const admitted = (admission: FailOpenAdmission): NonNullable<FailOpenAdmission['reservation']> => {
  expect(admission.allowed).toBe(true);
  if (admission.reservation === null) throw new Error('no reservation');
  return admission.reservation;
};

describe('FailOpenTollgate', () => {
  it('admits known users locally while Redis is away, enforces the hard limit there, and writes each unit back once', async () => {
    const failOpen = failOpenClient();
    const org = uniqueName('o');
    const alice = uniqueName('u');
    const stranger = uniqueName('u');
    await writeOrg(admin, org, { geocoding_quota: '6', geocoder_provider: 'geonames' });
    await writeUser(admin, alice, { organization: org });
    await writeUser(admin, stranger, { geocoding_quota: '10' });
    try {
      const first = await failOpen.consume({ user: alice, kind: 'geocoding' });
      expect(first).toMatchObject({ allowed: true, failOpen: false, used: 1 });
      await failOpen.settle(admitted(first), 'success');

      await outage();
      const local: FailOpenAdmission[] = [];
      for (let i = 0; i < 3; i += 1) local.push(await failOpen.consume({ user: alice, kind: 'geocoding' }));
      expect(local.map((a) => [a.allowed, a.failOpen, a.used])).toEqual([[true, true, 2], [true, true, 3], [true, true, 4]]);
      // Bulk of 3 does not fit in what is left (2): refused locally, nothing journaled.
      expect(await failOpen.consume({ user: alice, kind: 'geocoding', cost: 3 })).toMatchObject({
        allowed: false,
        failOpen: true,
        reason: 'quota_exceeded',
        used: 4,
        reservation: null,
      });
      // A user never decided through Redis here cannot be judged: the error of consume().
      await expect(failOpen.consume({ user: stranger, kind: 'geocoding' })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE' });
      // A request id replays locally; reused for another cost it is refused.
      const withId = await failOpen.consume({ user: alice, kind: 'geocoding', requestId: 'r-1' });
      expect(await failOpen.consume({ user: alice, kind: 'geocoding', requestId: 'r-1' })).toMatchObject({ replayed: true, used: withId.used });
      await expect(failOpen.consume({ user: alice, kind: 'geocoding', cost: 2, requestId: 'r-1' })).rejects.toMatchObject({
        code: 'ERR_TOLLGATE_REQUEST_ID_REUSED',
      });

      expect(await failOpen.settle(admitted(local[0]!), 'success')).toEqual({ status: 'journaled' });
      expect(await failOpen.settle(admitted(local[1]!), 'empty')).toEqual({ status: 'journaled' });
      expect(await failOpen.settle(admitted(local[2]!), 'failed')).toEqual({ status: 'journaled' });
      expect(await failOpen.settle(admitted(local[2]!), 'failed')).toEqual({ status: 'already_settled' });
      await failOpen.settle(admitted(withId), 'success');
      expect(failOpen.stats()).toMatchObject({ size: 4, unwrittenUnits: 4, written: 0 });
      expect(await failOpen.flush()).toEqual({ written: 0, remaining: 4 });

      await backAgain();
      const flushed = await failOpen.flush();
      expect(flushed).toEqual({ written: 4, remaining: 0 });
      expect(await failOpen.flush()).toEqual({ written: 0, remaining: 0 });
      const expected = { success_responses: 3, empty_responses: 1, failed_responses: 1, total_requests: 5, isolines_generated: 0 };
      expect((await tollgate.usage({ user: alice, kind: 'geocoding' })).metrics).toEqual(expected);
      expect((await tollgate.usage({ org, kind: 'geocoding' })).metrics).toEqual(expected);
      // Through Redis again: 4 used of 6.
      expect(await failOpen.consume({ user: alice, kind: 'geocoding', cost: 3 })).toMatchObject({ allowed: false, failOpen: false, used: 4 });
    } finally {
      await failOpen.close();
    }
  });

  it('once Redis is back, writes the charges of requests still running before deciding there, and their refunds later', async () => {
    const failOpen = failOpenClient();
    const user = uniqueName('u');
    await writeUser(admin, user, { geocoding_quota: '10' });
    try {
      for (let i = 0; i < 5; i += 1) await failOpen.settle(admitted(await failOpen.consume({ user, kind: 'geocoding' })), 'success');
      await outage();
      // Five requests admitted locally and still running when Redis returns.
      const running = [];
      for (let i = 0; i < 5; i += 1) running.push(admitted(await failOpen.consume({ user, kind: 'geocoding' })));
      await backAgain();
      // Redis alone holds 5; with the journal it is 10: the decision must see 10.
      const next = await failOpen.consume({ user, kind: 'geocoding' });
      expect(next).toMatchObject({ allowed: false, failOpen: false, used: 10 });
      expect((await tollgate.usage({ user, kind: 'geocoding' })).metrics).toMatchObject({ success_responses: 10, total_requests: 10 });
      expect(failOpen.stats()).toMatchObject({ size: 5, unwrittenUnits: 0 });

      // Two of them fail: their refunds are written under markers of their own, once.
      for (const [index, reservation] of running.entries()) await failOpen.settle(reservation, index < 2 ? 'failed' : 'success');
      expect(await failOpen.flush()).toEqual({ written: 5, remaining: 0 });
      expect(await failOpen.flush()).toEqual({ written: 0, remaining: 0 });
      expect((await tollgate.usage({ user, kind: 'geocoding' })).metrics).toMatchObject({
        success_responses: 8,
        failed_responses: 2,
        total_requests: 10,
      });
      expect(await failOpen.consume({ user, kind: 'geocoding', cost: 2 })).toMatchObject({ allowed: true, failOpen: false, used: 10 });
    } finally {
      await failOpen.close();
    }
  });

  it('writes a large journal back in a few script calls (batches of 500), each entry once', async () => {
    const failOpen = failOpenClient({ journalMaxEntries: 2000 });
    const user = uniqueName('u');
    await writeUser(admin, user, { geocoding_quota: '5000' });
    try {
      await failOpen.settle(admitted(await failOpen.consume({ user, kind: 'geocoding' })), 'success');
      await outage();
      for (let i = 0; i < 1200; i += 1) await failOpen.settle(admitted(await failOpen.consume({ user, kind: 'geocoding' })), 'success');
      await backAgain();
      // Counted where they are sent: the scripts that write journal markers, and nothing else
      // this client may send meanwhile. On the new connection ioredis sends the first as EVAL.
      const sent = vi.spyOn(client, 'sendCommand');
      try {
        expect(await failOpen.flush()).toEqual({ written: 1200, remaining: 0 });
        const writeBacks = sent.mock.calls.filter(
          ([command]) => /^eval(sha)?$/.test(command.name) && command.args.some((arg) => String(arg).startsWith('tollgate:journal:')),
        );
        expect(writeBacks).toHaveLength(3);
      } finally {
        sent.mockRestore();
      }
      expect((await tollgate.usage({ user, kind: 'geocoding' })).metrics).toMatchObject({ success_responses: 1201, total_requests: 1201 });
    } finally {
      await failOpen.close();
    }
  });

  it('leaves no refund behind for a consume the client refused unsent while Redis was away', async () => {
    const settles: string[] = [];
    const observer: TollgateObserver = {
      ...NOOP_OBSERVER,
      settled: (event) => settles.push(`${event.outcome}: ${event.status}`),
      redisError: (event) => {
        if (event.operation === 'settle') settles.push(`settle: ${event.reason}`);
      },
    };
    // Its own Tollgate, so close() below waits for every refund it still has (each makes one more attempt).
    const gate = new Tollgate({ redis: client, timeoutMs: 300, configCacheMs: 60_000, observer });
    const user = uniqueName('u');
    await writeUser(admin, user, { geocoding_quota: '10' });
    try {
      // Caches the config: the next consume goes as far as sending its decision.
      expect(await gate.consume({ user, kind: 'geocoding' })).toMatchObject({ allowed: true, used: 1 });
      await outage();
      const refused = await gate.consume({ user, kind: 'geocoding' }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RedisUnavailableError);
      expect((refused as Error).message).toContain("Stream isn't writeable");
      await backAgain();
    } finally {
      await gate.close();
    }
    // The refused decision was never written to a socket: no settle was tried, then or later.
    expect(settles).toEqual([]);
    expect((await tollgate.usage({ user, kind: 'geocoding' })).metrics).toMatchObject({ success_responses: 1, failed_responses: 0, total_requests: 1 });
  });

  it('refuses a Tollgate whose client queues commands, and unknown options', async () => {
    const queueing = new Tollgate({ redis: redis.url });
    try {
      expect(() => new FailOpenTollgate({ tollgate: queueing })).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_OPTIONS' }));
      expect(() => new FailOpenTollgate({ tollgate, flushEveryMs: 5 } as never)).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_OPTIONS' }));
    } finally {
      await queueing.close();
    }
  });
});

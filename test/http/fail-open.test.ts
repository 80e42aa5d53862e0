// Fail-open over real HTTP: serve from the local journal while Redis is down, write it back when Redis returns.
import { captureLogs } from '../helpers/logs.js';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { connectForFailOpen, markEmpty, quotaGuard, type QuotaGuard } from '../../src/http/index.js';
import { journalMarkerKey } from '../../src/core/keys.js';
import { writeJournalEntry } from '../../src/redis/journal-writeback.js';
import { uniqueName, writeOrg, writeUser } from '../helpers/fixtures.js';
import { RestartableRedis } from '../helpers/restartable-redis.js';
import { call, serveForFile } from './support.js';

let redis: RestartableRedis;
let tollgate: Tollgate;
let client: Redis;
let admin: Redis;
const servers = serveForFile();
const logs = captureLogs();

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

const quiet: ErrorRequestHandler = (_error, _req, res, _next) => {
  res.status(500).json({ error: 'handler failed' });
};

/** `?mode=empty|500` as in guard.test.ts, plus `/slow`, which waits for `release` and then answers 500. */
function appWith(guard: QuotaGuard, slow: { started: () => void; release: Promise<void> }): Express {
  const app = express();
  app.get('/u/:username/api/v1/thing', guard, (req, res) => {
    if (req.query.mode === 'empty') {
      markEmpty(res);
      res.json({ results: [] });
    } else if (req.query.mode === '500') {
      res.status(500).json({ error: 'upstream failed' });
    } else {
      res.json({ ok: true });
    }
  });
  app.get('/u/:username/api/v1/slow', guard, async (_req, res) => {
    slow.started();
    await slow.release;
    res.status(500).json({ error: 'upstream failed late' });
  });
  app.use(quiet);
  return app;
}

describe('fail-open', () => {
  it('serves known callers from the journal while Redis is down and writes every unit back when it returns', async () => {
    const org = uniqueName('o');
    const alice = uniqueName('u');
    const stranger = uniqueName('u');
    const tiny = uniqueName('u');
    await writeOrg(admin, org, { geocoding_quota: '7', geocoder_provider: 'geonames' });
    await writeUser(admin, alice, { organization: org, map_key: 'alice-key' });
    await writeUser(admin, stranger, { geocoding_quota: '100', map_key: 'stranger-key' });
    await writeUser(admin, tiny, { geocoding_quota: '100', map_key: 'tiny-key' });

    let started = (): void => undefined;
    const handlerStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const options = { tollgate, kind: 'geocoding' as const, failOpen: true, timeoutMs: 300, flushIntervalMs: 60_000, logger: logs.logger };
    const guard = quotaGuard(options);
    const small = quotaGuard({ ...options, journalMaxEntries: 2 });
    const { url } = await servers.start(appWith(guard, { started, release: released }));
    const smallServed = await servers.start(appWith(small, { started: () => undefined, release: Promise.resolve() }));
    const alicePath = (path: string): string => `${url}/u/${alice}/api/v1/${path}${path.includes('?') ? '&' : '?'}api_key=alice-key`;

    // Redis up: one success, and one slow request admitted now that will fail after Redis is gone.
    expect((await call(alicePath('thing'))).status).toBe(200);
    expect((await call(`${smallServed.url}/u/${tiny}/api/v1/thing?api_key=tiny-key`)).status).toBe(200);
    const slowReply = call(alicePath('slow'));
    await handlerStarted;

    await redis.stop();

    // The slow request ends with 500 while Redis is down: its refund goes to the journal.
    release();
    expect((await slowReply).status).toBe(500);

    // Down: alice (verified before) is served: 3 successes, 1 empty, 1 failure = 5 units against the pool of 7.
    const during = [];
    for (const path of ['thing', 'thing', 'thing', 'thing?mode=empty', 'thing?mode=500']) {
      during.push(await call(alicePath(path)));
    }
    expect(during.map((reply) => reply.status)).toEqual([200, 200, 200, 200, 500]);
    // 1 before + 1 slow + 5 now = 7 admitted units as far as this process knows: the 8th is refused locally.
    expect(during[3]?.headers.get('ratelimit')).toMatch(/^"geocoding";r=1;t=\d+$/);
    const over = await call(alicePath('thing'));
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ detail: 'You have reached the limit of your quota', quota: 7, used: 7 });

    // A caller this process never verified, or a wrong key, cannot be checked without Redis: 503.
    expect((await call(`${url}/u/${stranger}/api/v1/thing?api_key=stranger-key`)).status).toBe(503);
    expect((await call(`${url}/u/${alice}/api/v1/thing?api_key=wrong`)).status).toBe(503);

    // A full journal stops fail-open: 503 with its own code.
    const tinyCalls = [];
    for (let i = 0; i < 3; i += 1) tinyCalls.push(await call(`${smallServed.url}/u/${tiny}/api/v1/thing?api_key=tiny-key`));
    expect(tinyCalls.map((reply) => reply.status)).toEqual([200, 200, 503]);
    expect(tinyCalls[2]?.body).toMatchObject({ code: 'ERR_TOLLGATE_JOURNAL_FULL' });

    await guard.drain();
    expect(guard.journalStats()).toMatchObject({ size: 6, written: 0 });
    expect(await guard.flush()).toEqual({ written: 0, remaining: 6 });

    await redis.start();
    await vi.waitFor(async () => expect((await guard.flush()).remaining).toBe(0), { timeout: 20_000, interval: 200 });
    await vi.waitFor(async () => expect((await small.flush()).remaining).toBe(0), { timeout: 20_000, interval: 200 });
    expect(guard.journalStats()).toMatchObject({ size: 0, written: 6, dropped: 0, lost: 0 });

    const userUsage = await tollgate.usage({ user: alice, kind: 'geocoding' });
    const orgUsage = await tollgate.usage({ org, kind: 'geocoding' });
    const expected = { success_responses: 4, empty_responses: 1, failed_responses: 2, total_requests: 7, isolines_generated: 0 };
    expect(userUsage.metrics).toEqual(expected);
    expect(orgUsage.metrics).toEqual(expected);
    expect(orgUsage.used).toBe(5);
    expect((await tollgate.usage({ user: tiny, kind: 'geocoding' })).metrics).toMatchObject({ success_responses: 3, total_requests: 3 });

    // Written once: another pass finds nothing to do.
    expect(await guard.flush()).toEqual({ written: 0, remaining: 0 });
    expect((await tollgate.usage({ org, kind: 'geocoding' })).metrics).toEqual(expected);
    await guard.close();
    await small.close();
  });

  it('refuses to be built on a client that queues commands while Redis is away', async () => {
    const queueing = new Tollgate({ redis: redis.url });
    try {
      expect(() => quotaGuard({ tollgate: queueing, kind: 'geocoding', failOpen: true })).toThrow(
        expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_OPTIONS', message: expect.stringContaining('enableOfflineQueue') }),
      );
      expect(() => quotaGuard({ tollgate: queueing, kind: 'geocoding' })).not.toThrow();
    } finally {
      await queueing.close();
    }
  });

  it('a write-back repeated with the same entry id changes nothing', async () => {
    const user = uniqueName('u');
    const key = `user:${user}:geocoder_here:success_responses:202611`;
    const entryId = `entry-${user}`;
    const connection = admin.duplicate();
    try {
      expect(await writeJournalEntry(connection, entryId, '22', [{ key, delta: 3 }])).toBe('written');
      expect(await writeJournalEntry(connection, entryId, '22', [{ key, delta: 3 }])).toBe('already_written');
      expect(await admin.zscore(key, '22')).toBe('3');
      expect(await admin.pttl(journalMarkerKey(entryId))).toBeGreaterThan(0);
    } finally {
      connection.disconnect();
      await admin.del(key, journalMarkerKey(entryId));
    }
  });

  it('a write-back meeting a key of the wrong type writes nothing at all, marker included', async () => {
    const user = uniqueName('u');
    const good = `user:${user}:geocoder_here:success_responses:202611`;
    const bad = `org:${user}:geocoder_here:success_responses:202611`;
    const entryId = `entry-${user}`;
    await admin.set(bad, 'not a sorted set');
    try {
      await expect(writeJournalEntry(admin, entryId, '22', [{ key: good, delta: 3 }, { key: bad, delta: 3 }])).rejects.toMatchObject({
        code: 'ERR_TOLLGATE_INVALID_CONFIG',
      });
      expect(await admin.exists(good, journalMarkerKey(entryId))).toBe(0);
    } finally {
      await admin.del(good, bad, journalMarkerKey(entryId));
    }
  });
});

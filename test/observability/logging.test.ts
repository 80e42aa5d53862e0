// Structured logs: secrets never written, and a Redis outage logged once when it starts and once when it ends, not per request.
import express from 'express';
import { describe, expect, it } from 'vitest';
import { combineObservers } from '../../src/core/observer.js';
import { quotaGuard, Tollgate } from '../../src/index.js';
import { loggingObserver, scrubSecrets } from '../../src/observability/logging.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { startPrivateRedis } from '../../demo/src/private-server.js';
import { captureLogs } from '../helpers/logs.js';
import { uniqueName } from '../helpers/fixtures.js';
import { Redis } from 'ioredis';
import { call, serve } from '../http/support.js';

describe('secrets in logs', () => {
  it('redacts API keys, tokens and passwords in fields, nested fields, messages and Redis URLs', () => {
    const logs = captureLogs();
    const secrets = ['k3y-s3cr3t-0001', 'adm1n-t0ken-0002', 'hunter2-pass-0003', 'bearer-0004', 'digest-0005', 'query-key-0006'];
    logs.logger.warn(
      { apiKey: secrets[0], token: secrets[1], request: { authorization: `Bearer ${secrets[3]}`, api_key_sha256: secrets[4] }, url: `redis://default:${secrets[2]}@db:6379/0` },
      `could not reach redis://u:${secrets[2]}@db:6379 for /geocode?q=x&api_key=${secrets[5]} (Authorization: Bearer ${secrets[3]})`,
    );
    logs.logger.error({ error: `connect ECONNREFUSED rediss://:${secrets[2]}@10.0.0.1:6380` }, 'failed');
    const raw = logs.raw();
    for (const secret of secrets) expect(raw).not.toContain(secret);
    const [first, second] = logs.lines();
    expect(first).toMatchObject({ level: 'warn', apiKey: '[redacted]', token: '[redacted]', request: { authorization: '[redacted]' }, url: 'redis://default:***@db:6379/0' });
    expect(first?.msg).toBe('could not reach redis://u:***@db:6379 for /geocode?q=x&api_key=*** (Authorization: Bearer ***)');
    expect(second?.error).toBe('connect ECONNREFUSED rediss://:***@10.0.0.1:6380');
  });

  it('scrubSecrets leaves text without secrets alone', () => {
    expect(scrubSecrets('redis://127.0.0.1:6379 answered in 3 ms')).toBe('redis://127.0.0.1:6379 answered in 3 ms');
  });
});

describe('decision lines', () => {
  it('are off by default, and carry the user name only when asked', () => {
    const event = { mode: 'consume', kind: 'geocoding', serviceType: 'geocoder_here', result: 'allowed', seconds: 0.0012, user: 'alice-secret-name' } as const;
    const quiet = captureLogs();
    loggingObserver(quiet.logger).decision(event);
    expect(quiet.lines()).toEqual([]);
    const anonymous = captureLogs();
    loggingObserver(anonymous.logger, { decisions: true }).decision(event);
    expect(anonymous.lines()[0]).toMatchObject({ level: 'debug', event: 'decision', kind: 'geocoding', serviceType: 'geocoder_here', result: 'allowed', ms: 1.2 });
    expect(anonymous.raw()).not.toContain('alice-secret-name');
    const named = captureLogs();
    loggingObserver(named.logger, { decisions: true, users: true }).decision(event);
    expect(named.lines()[0]?.user).toBe('alice-secret-name');
  });
});

describe('fail-open state', () => {
  it('logs when a guard starts serving without Redis and when it stops, once each, with the count', () => {
    const logs = captureLogs();
    const observer = loggingObserver(logs.logger);
    observer.failOpen('geocoding', false); // deciding through Redis, as always: nothing to say
    for (let i = 0; i < 25; i += 1) observer.failOpen('geocoding', true);
    for (let i = 0; i < 5; i += 1) observer.failOpen('geocoding', false);
    expect(logs.lines().map(({ level, event, kind, admitted }) => ({ level, event, kind, admitted }))).toEqual([
      { level: 'warn', event: 'fail_open.start', kind: 'geocoding', admitted: undefined },
      { level: 'info', event: 'fail_open.stop', kind: 'geocoding', admitted: 25 },
    ]);
  });
});

describe('a Redis outage under load', () => {
  it('is two lines (redis.down with the first failure, redis.up with the count), not one per 503 or per reconnect', async () => {
    const server = await startPrivateRedis();
    const logs = captureLogs();
    const metrics = createMetrics();
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    const tollgate = new Tollgate({ redis: client, timeoutMs: 300, logger: logs.logger, observer: combineObservers(metrics.observer, loggingObserver(logs.logger)) });
    const user = uniqueName('u');
    await client.hset(`rails:users:${user}`, { geocoding_quota: '1000', map_key: 'the-key' });
    const app = express();
    app.get('/u/:username/api/v1/geocode', quotaGuard({ tollgate, kind: 'geocoding' }), (_req, res) => void res.json({ ok: true }));
    const served = await serve(app);
    const hit = () => call(`${served.url}/u/${user}/api/v1/geocode?api_key=the-key`);
    let restarted: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
    try {
      expect((await hit()).status).toBe(200);
      await server.stop();
      const during = await Promise.all(Array.from({ length: 60 }, hit));
      expect(during.every((reply) => reply.status === 503)).toBe(true);
      // Let ioredis fail a few reconnects too: each is an `error` event.
      await new Promise((resolve) => setTimeout(resolve, 400));
      restarted = await startPrivateRedis({ port: server.port });
      await client.hset(`rails:users:${user}`, { geocoding_quota: '1000', map_key: 'the-key' }).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        await client.hset(`rails:users:${user}`, { geocoding_quota: '1000', map_key: 'the-key' });
      });
      expect((await hit()).status).toBe(200);

      const lines = logs.lines();
      const events = lines.map((line) => line.event);
      expect(events.filter((event) => event === 'redis.down')).toHaveLength(1);
      expect(events.filter((event) => event === 'redis.up')).toHaveLength(1);
      expect(events.filter((event) => event === 'request.failed')).toHaveLength(0);
      const up = lines.find((line) => line.event === 'redis.up') as Record<string, number>;
      expect(up.failures).toBeGreaterThanOrEqual(60);
      const down = lines.find((line) => line.event === 'redis.down');
      expect(down).toMatchObject({ level: 'warn', code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE' });
      // No line repeats the code inside its message ("CODE: CODE: ...").
      expect(logs.raw()).not.toMatch(/ERR_TOLLGATE_\w+: ERR_TOLLGATE_/);
      const errors = (await metrics.registry.getSingleMetric('tollgate_redis_errors_total')!.get()).values;
      // Each of the 60 requests failed once on Redis (its key check or its decision); background
      // refunds of admissions whose reply was lost retry `settle` and are counted apart.
      const requestErrors = errors
        .filter((value) => value.labels.operation === 'consume' || value.labels.operation === 'authenticate')
        .reduce((sum, value) => sum + value.value, 0);
      expect(requestErrors).toBe(60);
    } finally {
      await served.close();
      client.disconnect();
      await restarted?.stop();
      await server.stop();
    }
  });
});

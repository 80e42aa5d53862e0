// Prometheus metrics against a real Redis: decisions by result, units charged and refunded, settles, cache lookups, Redis errors, fail-open state.
import express from 'express';
import { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { markEmpty, quotaGuard, Tollgate } from '../../src/index.js';
import { createMetrics, type TollgateMetrics } from '../../src/observability/metrics.js';
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { connectForFailOpen } from '../../src/redis/fail-open-support.js';
import { startPrivateRedis } from '../../demo/src/private-server.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { freePort } from '../helpers/redis-server.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from '../http/support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();

/** The value of one series, 0 when absent. */
async function value(registry: Registry, metric: string, labels: Record<string, string>): Promise<number> {
  // A histogram's _count series lives in the histogram's own values.
  const base = metric.endsWith('_count') ? metric.slice(0, -'_count'.length) : metric;
  const found = registry.getSingleMetric(base);
  if (found === undefined) throw new Error(`no metric ${base}`);
  const series = (await found.get()).values.filter(
    (entry) =>
      (base === metric || (entry as { metricName?: string }).metricName === metric) &&
      Object.entries(labels).every(([label, expected]) => String(entry.labels[label]) === expected),
  );
  return series.reduce((sum, entry) => sum + entry.value, 0);
}

let metrics: TollgateMetrics;
let tollgate: Tollgate;
beforeAll(() => {
  metrics = createMetrics();
  tollgate = new Tollgate({ redis: redis.client(), observer: metrics.observer, logger: SILENT_LOGGER });
});

describe('engine metrics', () => {
  it('counts decisions by result, units charged and refunded, settles by outcome, and cache hits', async () => {
    const { registry } = metrics;
    const alice = name('u');
    const broke = name('u');
    const soft = name('u');
    await writeUser(redis.client(), alice, { geocoding_quota: '4', geocoder_provider: 'geonames' });
    await writeUser(redis.client(), broke, { geocoding_quota: '0', geocoder_provider: 'geonames' });
    await writeUser(redis.client(), soft, { geocoding_quota: '1', soft_geocoding_limit: 'true', geocoder_provider: 'geonames' });
    const series = { kind: 'geocoding', service_type: 'geocoder_geonames', mode: 'consume' };
    const before = {
      allowed: await value(registry, 'tollgate_decisions_total', { ...series, result: 'allowed' }),
      exceeded: await value(registry, 'tollgate_decisions_total', { ...series, result: 'quota_exceeded' }),
      noQuota: await value(registry, 'tollgate_decisions_total', { ...series, result: 'no_quota' }),
      soft: await value(registry, 'tollgate_decisions_total', { ...series, result: 'soft_limit' }),
      charged: await value(registry, 'tollgate_units_charged_total', { kind: 'geocoding' }),
      refunded: await value(registry, 'tollgate_units_refunded_total', { kind: 'geocoding' }),
      hits: await value(registry, 'tollgate_config_cache_lookups_total', { result: 'hit' }),
      latency: await value(registry, 'tollgate_decision_duration_seconds_count', { kind: 'geocoding', mode: 'consume' }),
    };

    const first = await tollgate.consume({ user: alice, kind: 'geocoding', cost: 2 });
    await tollgate.settle(first.reservation!, { success: 1, failed: 1 });
    const second = await tollgate.consume({ user: alice, kind: 'geocoding', cost: 2, requestId: 'r1' });
    await tollgate.consume({ user: alice, kind: 'geocoding', cost: 2, requestId: 'r1' }); // a replay charges nothing
    await tollgate.settle(second.reservation!, 'failed');
    await tollgate.settle(second.reservation!, 'failed'); // already settled: nothing refunded twice
    const full = await tollgate.consume({ user: alice, kind: 'geocoding', cost: 3 });
    expect(full.allowed).toBe(true);
    expect((await tollgate.consume({ user: alice, kind: 'geocoding' })).reason).toBe('quota_exceeded');
    expect((await tollgate.consume({ user: broke, kind: 'geocoding' })).reason).toBe('no_quota');
    expect((await tollgate.consume({ user: soft, kind: 'geocoding', cost: 5 })).reason).toBe('soft_limit');

    expect(await value(registry, 'tollgate_decisions_total', { ...series, result: 'allowed' })).toBe(before.allowed + 4);
    expect(await value(registry, 'tollgate_decisions_total', { ...series, result: 'quota_exceeded' })).toBe(before.exceeded + 1);
    expect(await value(registry, 'tollgate_decisions_total', { ...series, result: 'no_quota' })).toBe(before.noQuota + 1);
    expect(await value(registry, 'tollgate_decisions_total', { ...series, result: 'soft_limit' })).toBe(before.soft + 1);
    // 2 + 2 + 3 + 5 (soft) charged; the replay none. Refunded: 1 of the split, 2 of the failure, not the repeat.
    expect(await value(registry, 'tollgate_units_charged_total', { kind: 'geocoding' })).toBe(before.charged + 12);
    expect(await value(registry, 'tollgate_units_refunded_total', { kind: 'geocoding' })).toBe(before.refunded + 3);
    expect(await value(registry, 'tollgate_settles_total', { kind: 'geocoding', outcome: 'split', status: 'settled' })).toBeGreaterThanOrEqual(1);
    expect(await value(registry, 'tollgate_settles_total', { kind: 'geocoding', outcome: 'failed', status: 'already_settled' })).toBeGreaterThanOrEqual(1);
    // Seven decisions for alice within the cache's second: the first read Redis, the rest hit.
    expect(await value(registry, 'tollgate_config_cache_lookups_total', { result: 'hit' })).toBeGreaterThanOrEqual(before.hits + 4);
    expect(await value(registry, 'tollgate_decision_duration_seconds_count', { kind: 'geocoding', mode: 'consume' })).toBe(before.latency + 7);

    const text = await registry.metrics();
    expect(text).toContain('# TYPE tollgate_decisions_total counter');
    // Labels never carry a user name.
    for (const user of [alice, broke, soft]) expect(text).not.toContain(user);
  });

  it('counts calls Redis could not serve, by operation', async () => {
    const local = createMetrics();
    const dead = new Tollgate({ redis: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 200, observer: local.observer, logger: SILENT_LOGGER });
    try {
      await expect(dead.consume({ user: 'nobody', kind: 'geocoding' })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE' });
      await expect(dead.check({ user: 'nobody', kind: 'geocoding' })).rejects.toMatchObject({ code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE' });
      expect(await value(local.registry, 'tollgate_redis_errors_total', { operation: 'consume' })).toBe(1);
      expect(await value(local.registry, 'tollgate_redis_errors_total', { operation: 'check' })).toBe(1);
    } finally {
      await dead.close();
    }
  });
});

describe('guard metrics', () => {
  it('shows fail-open serving and the journal filling while Redis is down, and back to 0 after', async () => {
    const server = await startPrivateRedis();
    const local = createMetrics();
    const client = await connectForFailOpen(server.url, 300);
    const failOpen = new Tollgate({ redis: client, timeoutMs: 300, observer: local.observer, logger: SILENT_LOGGER });
    const user = name('u');
    await client.hset(`rails:users:${user}`, { geocoding_quota: '100', map_key: 'k', geocoder_provider: 'geonames' });
    const guard = quotaGuard({ tollgate: failOpen, kind: 'geocoding', failOpen: true, timeoutMs: 300, flushIntervalMs: 60_000 });
    const app = express();
    app.get('/u/:username/api/v1/geocode', guard, (req, res) => {
      if (req.query.empty !== undefined) markEmpty(res);
      res.json({ ok: true });
    });
    const { url } = await servers.start(app);
    const hit = (query = '') => call(`${url}/u/${user}/api/v1/geocode?api_key=k${query}`);
    let restarted: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
    try {
      expect((await hit()).status).toBe(200);
      await guard.drain();
      expect(await value(local.registry, 'tollgate_fail_open_serving', { kind: 'geocoding' })).toBe(0);
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (let i = 0; i < 3; i += 1) expect((await hit(i === 0 ? '&empty' : '')).status).toBe(200);
      await guard.drain();
      expect(await value(local.registry, 'tollgate_fail_open_serving', { kind: 'geocoding' })).toBe(1);
      expect(await value(local.registry, 'tollgate_fail_open_admissions_total', { kind: 'geocoding' })).toBe(3);
      expect(await value(local.registry, 'tollgate_journal_entries', { kind: 'geocoding' })).toBe(3);
      expect(await value(local.registry, 'tollgate_journal_capacity', { kind: 'geocoding' })).toBe(10_000);

      restarted = await startPrivateRedis({ port: server.port });
      // The private server kept nothing: write the user again through a client of its own.
      const admin = new Redis(restarted.url);
      await admin.hset(`rails:users:${user}`, { geocoding_quota: '100', map_key: 'k', geocoder_provider: 'geonames' });
      admin.disconnect();
      // Served through Redis again once the client has reconnected.
      await expect.poll(async () => {
        await hit();
        return value(local.registry, 'tollgate_fail_open_serving', { kind: 'geocoding' });
      }, { timeout: 8000, interval: 200 }).toBe(0);
      await guard.flush();
      expect(await value(local.registry, 'tollgate_fail_open_serving', { kind: 'geocoding' })).toBe(0);
      expect(await value(local.registry, 'tollgate_journal_entries', { kind: 'geocoding' })).toBe(0);
      // Every fail-open admission (3, plus any while the client reconnected) was written back.
      const admitted = await value(local.registry, 'tollgate_fail_open_admissions_total', { kind: 'geocoding' });
      expect(admitted).toBeGreaterThanOrEqual(3);
      expect(await value(local.registry, 'tollgate_journal_written', { kind: 'geocoding' })).toBe(admitted);
    } finally {
      await guard.close();
      client.disconnect();
      await restarted?.stop();
      await server.stop();
    }
  });
});

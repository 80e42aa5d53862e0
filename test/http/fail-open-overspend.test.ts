// Fail-open under an outage with a hard quota reached mid-run: served 2xx vs units counted in Redis vs quota, one and two app instances.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import express, { type Express } from 'express';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { connectForFailOpen, quotaGuard, type QuotaGuard } from '../../src/http/index.js';
import { uniqueName, writeUser } from '../helpers/fixtures.js';
import { RestartableRedis } from '../helpers/restartable-redis.js';
import { serveForFile } from './support.js';

let redis: RestartableRedis;
let admin: Redis;
const servers = serveForFile();

beforeAll(async () => {
  redis = await RestartableRedis.start();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.dispose();
});

/** One app instance: its own fail-open client, Tollgate, guard (and so journal) and HTTP server. */
interface Instance {
  readonly client: Redis;
  readonly tollgate: Tollgate;
  readonly guard: QuotaGuard;
  readonly url: string;
}

async function startInstance(failOpenInstances = 1): Promise<Instance> {
  const client = await connectForFailOpen(redis.url, 300);
  client.on('error', () => undefined);
  const tollgate = new Tollgate({ redis: client, timeoutMs: 300 });
  const guard = quotaGuard({ tollgate, kind: 'geocoding', failOpen: true, failOpenInstances, timeoutMs: 300, logger: SILENT_LOGGER });
  const app: Express = express();
  app.get('/u/:username/api/v1/geocode', guard, (_req, res) => {
    res.json({ ok: true });
  });
  const { url } = await servers.start(app);
  return { client, tollgate, guard, url };
}

/** Sends `total` requests, `concurrency` at a time, round-robin over the instances; answers the statuses seen. */
async function load(instances: readonly Instance[], user: string, key: string, total: number, concurrency = 10): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const n = next;
      next += 1;
      const instance = instances[n % instances.length] as Instance;
      const response = await fetch(`${instance.url}/u/${user}/api/v1/geocode?api_key=${key}`);
      await response.arrayBuffer();
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

const ok = (statuses: Map<number, number>): number => statuses.get(200) ?? 0;

/**
 * Quota Q. Redis up: Q/2 served. Redis stopped: each instance serves from its journal until
 * it refuses locally. Redis back: more load than the quota could take. Then every journal is
 * written back and the figures compared.
 */
async function outageRun(instances: readonly Instance[], quota: number): Promise<{ served: number; counted: number; phases: number[] }> {
  const user = uniqueName('u');
  const key = uniqueName('k');
  await writeUser(admin, user, { geocoding_quota: String(quota), geocoder_provider: 'geonames', map_key: key });

  const before = await load(instances, user, key, quota / 2);
  expect(ok(before)).toBe(quota / 2);
  await Promise.all(instances.map((instance) => instance.guard.drain()));

  await redis.stop();
  await vi.waitFor(() => expect(instances.every((instance) => instance.client.status !== 'ready')).toBe(true));
  const during = await load(instances, user, key, quota * 2);

  await redis.start();
  await vi.waitFor(() => expect(instances.every((instance) => instance.client.status === 'ready')).toBe(true), { timeout: 10_000, interval: 20 });
  const after = await load(instances, user, key, quota);

  for (const instance of instances) {
    await vi.waitFor(async () => expect((await instance.guard.flush()).remaining).toBe(0), { timeout: 10_000, interval: 100 });
  }
  const counted = (await instances[0]!.tollgate.usage({ user, kind: 'geocoding' })).used;
  const phases = [ok(before), ok(during), ok(after)];
  return { served: phases.reduce((a, b) => a + b, 0), counted, phases };
}

describe('fail-open around an outage, hard quota reached mid-run', () => {
  it('one instance: never serves past the quota, and counts every served request once', async () => {
    const instance = await startInstance();
    try {
      const quota = 400;
      const { served, counted, phases } = await outageRun([instance], quota);
      console.info(`fail-open, 1 instance: served ${served} (before/during/after ${phases.join('/')}), counted ${counted}, quota ${quota}`);
      expect(counted).toBe(served);
      expect(served).toBe(quota);
      // Once Redis was back nothing was left: the journal was written before Redis decided again.
      expect(phases[2]).toBe(0);
    } finally {
      await instance.guard.close();
      instance.client.disconnect();
    }
  });

  it('two instances: count every served request once; the overspend is bounded by what the other instance admitted locally', async () => {
    const instances = [await startInstance(), await startInstance()];
    try {
      const quota = 400;
      const { served, counted, phases } = await outageRun(instances, quota);
      console.info(`fail-open, 2 instances: served ${served} (before/during/after ${phases.join('/')}), counted ${counted}, quota ${quota}`);
      expect(counted).toBe(served);
      // Each instance admits locally up to what it last knew was left (quota/2 here): together up to twice that.
      // (Requests in flight when Redis stopped make what each last knew up to 10 units stale.)
      expect(phases[1]).toBeLessThanOrEqual(2 * (quota / 2) + 10);
      // Back on Redis, with both journals written, nothing more is admitted.
      expect(phases[2]).toBe(0);
      expect(served).toBeLessThanOrEqual(quota + quota / 2 + 10);
    } finally {
      for (const instance of instances) {
        await instance.guard.close();
        instance.client.disconnect();
      }
    }
  });

  it('two instances told they are two (failOpenInstances: 2): each admits only its half of what was left, so together they stay within the quota', async () => {
    const instances = [await startInstance(2), await startInstance(2)];
    try {
      const quota = 400;
      const { served, counted, phases } = await outageRun(instances, quota);
      console.info(`fail-open, 2 instances with failOpenInstances 2: served ${served} (before/during/after ${phases.join('/')}), counted ${counted}, quota ${quota}`);
      expect(counted).toBe(served);
      // Up to the staleness of what each knew when Redis stopped (requests in flight then, at most 10).
      expect(served).toBeLessThanOrEqual(quota + 10);
      expect(phases[1]).toBeGreaterThan(0);
    } finally {
      for (const instance of instances) {
        await instance.guard.close();
        instance.client.disconnect();
      }
    }
  });
});

// A request its credit budget does not cover: 403 problem+json, no Retry-After, nothing counted or spent.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { quotaGuard } from '../../src/http/index.js';
import { Tollgate } from '../../src/index.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
let base: string;
beforeAll(async () => {
  const tollgate = new Tollgate({ redis: redis.client() });
  const app = express();
  app.get('/u/:username/api/v1/geocode', quotaGuard({ tollgate, kind: 'geocoding', logger: SILENT_LOGGER }), (_req, res) => {
    res.json({ ok: true });
  });
  base = (await servers.start(app)).url;
});

describe('credit budgets over HTTP', () => {
  it('admits what the allocation pays for, then answers 403 credits-exhausted without Retry-After', async () => {
    const org = name('o');
    const user = name('u');
    // Geocoding costs 40 millicredits a unit by default: an allocation of 0.08 credits pays for 2.
    await writeOrg(redis.client(), org, { geocoding_quota: '100', credits_enabled: 'true', credits_balance_millicredits: '1000000' });
    await writeUser(redis.client(), user, { organization: org, map_key: `k-${user}`, credits_allocation_millicredits: '80' });
    const url = `${base}/u/${user}/api/v1/geocode?api_key=k-${user}`;
    expect((await call(url)).status).toBe(200);
    expect((await call(url)).status).toBe(200);
    const before = await snapshot(redis.client(), [user, org]);
    const refused = await call(url);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(refused.body).toMatchObject({
      type: 'urn:tollgate:problem:credits-exhausted',
      code: 'ERR_TOLLGATE_CREDITS_EXHAUSTED',
      service: 'geocoding',
      cost: 1,
      costCredits: 0.04,
      availableCredits: 0,
    });
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);
  });

  it('still answers 429 with Retry-After when the quota is what ran out', async () => {
    const org = name('o');
    const user = name('u');
    await writeOrg(redis.client(), org, { geocoding_quota: '1', credits_enabled: 'true', credits_balance_millicredits: '1000000' });
    await writeUser(redis.client(), user, { organization: org, map_key: `k-${user}` });
    const url = `${base}/u/${user}/api/v1/geocode?api_key=k-${user}`;
    expect((await call(url)).status).toBe(200);
    const refused = await call(url);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(refused.body).toMatchObject({ code: 'ERR_TOLLGATE_QUOTA_EXCEEDED' });
  });
});

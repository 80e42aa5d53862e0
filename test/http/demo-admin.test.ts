// The demo mounts the admin API at /admin only when an admin token is configured.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { describe, expect, it } from 'vitest';
import { createDemoApp } from '../../demo/src/app.js';
import type { GeocodingProvider } from '../../demo/src/gazetteer.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import { Tollgate } from '../../src/index.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
// These tests never geocode: a gazetteer with no places keeps them from loading 135,000 cities.
const noPlaces: GeocodingProvider = { name: 'none', search: () => [] };
const TOKEN = 'demo-admin-token-0123456789';

async function demoUrl(adminToken?: string): Promise<string> {
  const tollgate = new Tollgate({ redis: redis.client() });
  const demo = createDemoApp({
    tollgate,
    geocoder: noPlaces,
    isolines: new StraightLineIsolines(),
    logger: SILENT_LOGGER,
    ...(adminToken === undefined ? {} : { adminToken }),
  });
  return (await servers.start(demo.app)).url;
}

describe('demo admin API', () => {
  it('serves /admin behind the bearer token when configured', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '42' });
    const base = await demoUrl(TOKEN);
    const shown = await call(`${base}/admin/users/${user}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ geocoding: { quota: 42 } });
    expect((await call(`${base}/admin/users/${user}`)).status).toBe(401);
    expect((await call(`${base}/admin/users/${user}`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(403);
  });

  it('has no /admin without a token', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '42' });
    const base = await demoUrl();
    expect((await call(`${base}/admin/users/${user}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
  });

  it('refuses a short admin token at construction', async () => {
    await expect(demoUrl('short')).rejects.toThrow(/adminToken/);
  });
});

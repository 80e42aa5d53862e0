// Requests at the edges of HTTP: a user name that is not valid percent-encoding, and HEAD on a metered GET.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createDemoApp, type DemoApp } from '../../demo/src/app.js';
import { CitiesGazetteer } from '../../demo/src/gazetteer.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import { snapshot, useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();

let demo: DemoApp;
let base: string;
beforeAll(async () => {
  const tollgate = new Tollgate({ redis: redis.client() });
  demo = createDemoApp({ tollgate, geocoder: CitiesGazetteer.load(), isolines: new StraightLineIsolines(), logger: SILENT_LOGGER });
  base = (await servers.start(demo.app)).url;
});

describe('a user name that is not valid percent-encoding', () => {
  it.each(['%E0%A4%A', '%ZZ', '%', '%C3%28'])('/u/%s/... answers a 400 about the path, nothing written', async (encoded) => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10', map_key: `k-${user}` });
    const before = await snapshot(redis.client(), [user]);
    const reply = await call(`${base}/u/${encoded}/api/v1/geocode?q=Lyon&api_key=k-${user}`);
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(reply.body).toMatchObject({ code: 'ERR_TOLLGATE_BAD_REQUEST', type: 'urn:tollgate:problem:malformed-path' });
    expect(String(reply.body.detail)).toContain('path');
    expect(String(reply.body.detail)).not.toContain('body');
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });
});

describe('HEAD on a metered GET', () => {
  it('is refused with 405 and Allow: GET before anything is read or counted; GET still works', async () => {
    const user = name('u');
    await writeUser(redis.client(), user, { geocoding_quota: '10', geocoder_provider: 'geonames', map_key: `k-${user}` });
    const url = `${base}/u/${user}/api/v1/geocode?q=Lyon&api_key=k-${user}`;
    const before = await snapshot(redis.client(), [user]);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(405);
    expect(head.headers.get('allow')).toBe('GET');
    expect(head.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    await demo.guards.geocoding.drain();
    expect(await snapshot(redis.client(), [user])).toEqual(before);

    expect((await call(url)).status).toBe(200);
    await demo.guards.geocoding.drain();
    expect(await redis.client().zscore(`user:${user}:geocoder_geonames:total_requests:${yyyymmNow()}`, dayNow())).toBe('1');
  });
});

function yyyymmNow(): string {
  const now = new Date();
  return `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

function dayNow(): string {
  return String(new Date().getUTCDate()).padStart(2, '0');
}

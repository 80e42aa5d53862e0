// Issue 11 item 11: the demo's routing endpoint (the third CARTO quota kind) and a geocoder that knows alternate names.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createDemoApp, type DemoApp } from '../../demo/src/app.js';
import { CitiesGazetteer } from '../../demo/src/gazetteer.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import { ROUTE_SPEEDS_MPS } from '../../demo/src/routing.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
const gazetteer = CitiesGazetteer.load();

let tollgate: Tollgate;
let demo: DemoApp;
let base: string;
beforeAll(async () => {
  tollgate = new Tollgate({ redis: redis.client() });
  demo = createDemoApp({ tollgate, geocoder: gazetteer, isolines: new StraightLineIsolines(), logger: SILENT_LOGGER });
  base = (await servers.start(demo.app)).url;
});

async function account(fields: Record<string, string>): Promise<{ user: string; url: (path: string) => string }> {
  const user = name('r');
  const key = `k-${user}`;
  await writeUser(redis.client(), user, { map_key: key, routing_provider: 'straightline', ...fields });
  return { user, url: (path) => `${base}/u/${user}/api/v1/${path}${path.includes('?') ? '&' : '?'}api_key=${key}` };
}

// Madrid to Barcelona: about 505 km as the crow flies.
const MADRID_BARCELONA = 'route?from=40.4168,-3.7038&to=41.3874,2.1686';

describe('routing endpoint', () => {
  it('answers a straight line with a duration per mode, costs 1 under routing', async () => {
    const alice = await account({ mapzen_routing_quota: '10' });
    const car = await call(alice.url(`${MADRID_BARCELONA}&mode=car`));
    const walk = await call(alice.url(`${MADRID_BARCELONA}&mode=walk`));
    const bicycle = await call(alice.url(MADRID_BARCELONA.replace('route?', 'route?mode=bicycle&')));
    await demo.guards.routing.drain();
    expect([car.status, walk.status, bicycle.status]).toEqual([200, 200, 200]);
    expect(car.headers.get('content-type')).toMatch(/^application\/geo\+json/);
    expect(car.body).toMatchObject({
      type: 'Feature',
      geometry: { type: 'LineString', coordinates: [[-3.7038, 40.4168], [2.1686, 41.3874]] },
      properties: { mode: 'car', provider: 'straightline', approximation: 'straight-line' },
    });
    const props = (reply: typeof car): { distance_m: number; duration_s: number } => reply.body.properties as { distance_m: number; duration_s: number };
    expect(props(car).distance_m).toBeGreaterThan(495_000);
    expect(props(car).distance_m).toBeLessThan(515_000);
    for (const [reply, mode] of [[car, 'car'], [walk, 'walk'], [bicycle, 'bicycle']] as const) {
      expect(props(reply).duration_s).toBe(Math.round(props(reply).distance_m / ROUTE_SPEEDS_MPS[mode]));
    }
    expect(car.headers.get('ratelimit')).toMatch(/^"routing";r=9;t=\d+$/);
    const usage = await tollgate.usage({ user: alice.user, kind: 'routing' });
    expect(usage.serviceType).toBe('routing_straightline');
    expect(usage.metrics).toMatchObject({ success_responses: 3, total_requests: 3 });
    expect((await call(alice.url('quota'))).body).toMatchObject({ mapzen_routing: { quota: 10, monthly_use: 3 } });
  });

  it('is guarded like the others: 401 without a key, 429 past the quota, 400 on bad input; nothing counted', async () => {
    const org = name('ro');
    await writeOrg(redis.client(), org, { mapzen_routing_quota: '1', routing_provider: 'straightline' });
    const alice = await account({ organization: org });
    expect((await call(alice.url(MADRID_BARCELONA))).status).toBe(200);
    await demo.guards.routing.drain();
    const before = await snapshot(redis.client(), [alice.user, org]);
    const refused = await call(alice.url(MADRID_BARCELONA));
    expect([refused.status, refused.body.detail]).toEqual([429, 'You have reached the limit of your quota']);
    for (const bad of ['route?from=40.4,-3.7', 'route?from=91,0&to=0,0', 'route?from=a,b&to=0,0', `${MADRID_BARCELONA}&mode=plane`, 'route?from=1,2,3&to=0,0']) {
      const reply = await call(alice.url(bad));
      expect([bad, reply.status]).toEqual([bad, 400]);
    }
    expect((await call(`${base}/u/${alice.user}/api/v1/${MADRID_BARCELONA}`)).status).toBe(401);
    expect(await snapshot(redis.client(), [alice.user, org])).toEqual(before);
  });
});

describe('geocoder names', () => {
  it.each([
    ['New York', 'New York City', 'US'],
    ['München', 'Munich', 'DE'],
    ['Munchen', 'Munich', 'DE'],
    ['Cologne', 'Köln', 'DE'],
    ['Koln', 'Köln', 'DE'],
    ['Cologne, IT', 'Cologne', 'IT'],
  ])('%s resolves to %s (%s)', (query, place, country) => {
    expect(gazetteer.search(query, 1)[0]).toMatchObject({ name: place, country });
  });

  it('ranks by population within an optional country filter, over HTTP too', async () => {
    expect(gazetteer.search('Cologne', 5).map((place) => place.country)).toEqual(['DE', 'IT', 'US']);
    expect(gazetteer.search('Cologne', 5, 'us').map((place) => place.country)).toEqual(['US']);
    const alice = await account({ geocoding_quota: '10' });
    const reply = await call(alice.url('geocode?q=Cologne&country=IT'));
    expect((reply.body.features as Array<{ properties: { country: string } }>).map((f) => f.properties.country)).toEqual(['IT']);
    expect((await call(alice.url('geocode?q=Cologne&country=ITA'))).status).toBe(400);
  });
});

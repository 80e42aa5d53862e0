// The demo service over real HTTP: geocoding, bulk, isolines, quota report, health, bad input, and the 200-request race.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createDemoApp, type DemoApp } from '../../demo/src/app.js';
import { CitiesGazetteer } from '../../demo/src/gazetteer.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { freePort } from '../helpers/redis-server.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
const gazetteer = CitiesGazetteer.load();
const LIMITS = { maxBulk: 10, maxRanges: 4, maxBodyBytes: 4096 };

let tollgate: Tollgate;
let demo: DemoApp;
let base: string;
beforeAll(async () => {
  tollgate = new Tollgate({ redis: redis.client() });
  demo = createDemoApp({ tollgate, geocoder: gazetteer, isolines: new StraightLineIsolines(), limits: LIMITS, logger: SILENT_LOGGER });
  base = (await servers.start(demo.app)).url;
});

interface Account {
  readonly user: string;
  readonly key: string;
  readonly url: (path: string) => string;
}

/** A user with its own quotas (geocoding, isolines) and `map_key`. */
async function account(fields: Record<string, string>): Promise<Account> {
  const user = name('u');
  const key = `k-${user}`;
  await writeUser(redis.client(), user, { map_key: key, geocoder_provider: 'geonames', isolines_provider: 'straightline', ...fields });
  return {
    user,
    key,
    url: (path) => `${base}/u/${user}/api/v1/${path}${path.includes('?') ? '&' : '?'}api_key=${key}`,
  };
}

const settle = async (): Promise<void> => {
  await demo.guards.geocoding.drain();
  await demo.guards.isolines.drain();
};

describe('geocoding', () => {
  it('GET answers a GeoJSON FeatureCollection from the gazetteer, biggest city first, and counts one success', async () => {
    const alice = await account({ geocoding_quota: '10' });
    const reply = await call(alice.url('geocode?q=Paris'));
    await settle();
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/geo\+json/);
    expect(reply.body.type).toBe('FeatureCollection');
    const features = reply.body.features as Array<{ geometry: { coordinates: number[] }; properties: Record<string, unknown> }>;
    expect(features[0]?.properties).toMatchObject({ name: 'Paris', country: 'FR' });
    const [lon, lat] = features[0]?.geometry.coordinates ?? [];
    expect(lon).toBeCloseTo(2.35, 1);
    expect(lat).toBeCloseTo(48.85, 1);
    // GeoNames' licence (CC BY 4.0) asks for credit with its data.
    expect(reply.body.attribution).toMatch(/GeoNames.*CC BY 4\.0/);
    const usage = await tollgate.usage({ user: alice.user, kind: 'geocoding' });
    expect(usage.serviceType).toBe('geocoder_geonames');
    expect(usage.metrics).toMatchObject({ success_responses: 1, total_requests: 1 });
  });

  it('a country suffix narrows the match; no match is an empty collection counted as empty', async () => {
    const alice = await account({ geocoding_quota: '10' });
    const texas = await call(alice.url('geocode?q=Paris,%20US&limit=1'));
    const nothing = await call(alice.url('geocode?q=Qwzxv%20Nowhere'));
    await settle();
    const first = (texas.body.features as Array<{ properties: { country: string } }>)[0];
    expect(first?.properties.country).toBe('US');
    expect(texas.body.features).toHaveLength(1);
    expect([nothing.status, (nothing.body.features as unknown[]).length]).toEqual([200, 0]);
    expect((await tollgate.usage({ user: alice.user, kind: 'geocoding' })).metrics).toMatchObject({
      success_responses: 1,
      empty_responses: 1,
      total_requests: 2,
    });
  });

  it('POST geocodes a list at a cost of N: found rows are successes, the rest empty', async () => {
    const alice = await account({ geocoding_quota: '10' });
    const reply = await call(alice.url('geocode'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ addresses: ['Lyon', 'Osaka, JP', 'Qwzxv Nowhere'] }),
    });
    await settle();
    expect(reply.status).toBe(200);
    expect(reply.headers.get('ratelimit')).toMatch(/^"geocoding";r=7;t=\d+$/);
    expect((reply.body.features as Array<{ properties: { index: number; name: string } }>).map((f) => [f.properties.index, f.properties.name])).toEqual([
      [0, 'Lyon'],
      [1, 'Osaka'],
    ]);
    expect(reply.body.unmatched).toEqual([2]);
    expect(reply.body.attribution).toMatch(/GeoNames.*CC BY 4\.0/);
    expect((await tollgate.usage({ user: alice.user, kind: 'geocoding' })).metrics).toMatchObject({
      success_responses: 2,
      empty_responses: 1,
      total_requests: 3,
    });
  });

  it('a bulk request larger than what remains is refused whole: 429, nothing counted', async () => {
    const alice = await account({ geocoding_quota: '2' });
    const before = await snapshot(redis.client(), [alice.user]);
    const reply = await call(alice.url('geocode'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ addresses: ['Lyon', 'Osaka', 'Lima'] }),
    });
    expect(reply.status).toBe(429);
    expect(reply.body).toMatchObject({ detail: 'You have reached the limit of your quota', cost: 3, quota: 2, used: 0 });
    expect(await snapshot(redis.client(), [alice.user])).toEqual(before);
  });

  it('200 concurrent requests against a hard quota of 50: exactly 50 answered, 150 refused, counters read exactly 50', async () => {
    const alice = await account({ geocoding_quota: '50' });
    const replies = await Promise.all(Array.from({ length: 200 }, () => call(alice.url('geocode?q=Madrid'))));
    await settle();
    const statuses = replies.map((reply) => reply.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(50);
    expect(statuses.filter((status) => status === 429)).toHaveLength(150);
    const usage = await tollgate.usage({ user: alice.user, kind: 'geocoding' });
    expect(usage.used).toBe(50);
    expect(usage.metrics).toMatchObject({ success_responses: 50, total_requests: 50, failed_responses: 0 });
    // Every admitted request saw its own remaining figure: 49 down to 0, each once.
    const remaining = replies
      .filter((reply) => reply.status === 200)
      .map((reply) => Number(/r=(\d+)/.exec(reply.headers.get('ratelimit') ?? '')?.[1]))
      .sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('isolines', () => {
  it('answers one closed, counter-clockwise polygon per range, with the radius the approximation promises', async () => {
    const alice = await account({ here_isolines_quota: '10' });
    const reply = await call(alice.url('isolines?lat=40.4168&lon=-3.7038&range=1000,2000&type=isodistance&mode=walk'));
    await settle();
    expect(reply.status).toBe(200);
    expect(reply.body.approximation).toBe('straight-line');
    const features = reply.body.features as Array<{ geometry: { type: string; coordinates: number[][][] }; properties: { range: number } }>;
    expect(features.map((f) => [f.geometry.type, f.properties.range])).toEqual([
      ['Polygon', 1000],
      ['Polygon', 2000],
    ]);
    for (const feature of features) {
      const ring = feature.geometry.coordinates[0] ?? [];
      expect(ring[0]).toEqual(ring[ring.length - 1]);
      // Shoelace: positive area is counter-clockwise (RFC 7946 exterior ring).
      let twiceArea = 0;
      for (let i = 0; i + 1 < ring.length; i += 1) twiceArea += ring[i]![0]! * ring[i + 1]![1]! - ring[i + 1]![0]! * ring[i]![1]!;
      expect(twiceArea).toBeGreaterThan(0);
      // The northernmost vertex is `range` metres north of the centre: 1 degree of latitude is ~111.2 km.
      const north = Math.max(...ring.map((point) => point[1]!));
      expect((north - 40.4168) * 111_195).toBeCloseTo(feature.properties.range, -1);
    }
    const usage = await tollgate.usage({ user: alice.user, kind: 'isolines' });
    expect(usage.serviceType).toBe('straightline_isolines');
    expect(usage.metrics).toMatchObject({ isolines_generated: 2, success_responses: 1, total_requests: 2 });
  });

  it('3 ranges against 2 remaining: 429 and nothing counted', async () => {
    const alice = await account({ here_isolines_quota: '3' });
    expect((await call(alice.url('isolines?lat=1&lon=1&range=60'))).status).toBe(200);
    await settle();
    const before = await snapshot(redis.client(), [alice.user]);
    const reply = await call(alice.url('isolines?lat=1&lon=1&range=60,120,180'));
    expect(reply.status).toBe(429);
    expect(reply.body).toMatchObject({ service: 'isolines', quota: 3, used: 1, cost: 3 });
    expect(reply.headers.get('ratelimit')).toMatch(/^"isolines";r=2;t=\d+$/);
    expect(await snapshot(redis.client(), [alice.user])).toEqual(before);
    expect((await tollgate.usage({ user: alice.user, kind: 'isolines' })).used).toBe(1);
  });
});

describe('bad input', () => {
  const tooMany = Array.from({ length: LIMITS.maxBulk + 1 }, () => 'Lyon');
  const json = (body: string, type = 'application/json'): RequestInit => ({ method: 'POST', headers: { 'Content-Type': type }, body });
  const cases: Array<[string, string, RequestInit?]> = [
    ['missing q', 'geocode'],
    ['empty q', 'geocode?q=%20%20'],
    ['q given twice', 'geocode?q=Lyon&q=Lima'],
    ['limit 0', 'geocode?q=Lyon&limit=0'],
    ['limit not a number', 'geocode?q=Lyon&limit=many'],
    ['lat 999', 'isolines?lat=999&lon=1&range=60'],
    ['lon "abc"', 'isolines?lat=1&lon=abc&range=60'],
    ['lat missing', 'isolines?lon=1&range=60'],
    ['range=-5', 'isolines?lat=1&lon=1&range=-5'],
    ['a range that is not a number', 'isolines?lat=1&lon=1&range=60,ten'],
    ['an empty range', 'isolines?lat=1&lon=1&range=60,,120'],
    ['a fractional range', 'isolines?lat=1&lon=1&range=60.5'],
    ['more ranges than allowed', 'isolines?lat=1&lon=1&range=1,2,3,4,5'],
    ['a range past the maximum', 'isolines?lat=1&lon=1&range=99999999&type=isochrone'],
    ['an unknown type', 'isolines?lat=1&lon=1&range=60&type=teleport'],
    ['an unknown mode', 'isolines?lat=1&lon=1&range=60&mode=bike'],
    ['malformed JSON', 'geocode', json('{"addresses": [')],
    ['an oversized body', 'geocode', json(JSON.stringify({ addresses: ['x'.repeat(LIMITS.maxBodyBytes)] }))],
    ['a bulk list over the limit', 'geocode', json(JSON.stringify({ addresses: tooMany }))],
    ['an empty bulk list', 'geocode', json('{"addresses": []}')],
    ['a body that is a bare list', 'geocode', json('["Lyon"]')],
    ['a non-string address', 'geocode', json('{"addresses": ["Lyon", 7]}')],
    ['an unknown body field', 'geocode', json('{"addresses": ["Lyon"], "cost": 0}')],
    ['a body that is not JSON', 'geocode', json('addresses=Lyon', 'text/plain')],
  ];

  it.each(cases)('%s: 400 problem+json, nothing counted', async (_label, path, init) => {
    const alice = await account({ geocoding_quota: '100', here_isolines_quota: '100' });
    const before = await snapshot(redis.client(), [alice.user]);
    const reply = await call(alice.url(path), init);
    await settle();
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(reply.body).toMatchObject({ status: 400, title: 'Bad request', code: 'ERR_TOLLGATE_BAD_REQUEST' });
    expect(String(reply.body.type)).toMatch(/^urn:tollgate:problem:/);
    expect(String(reply.body.detail).length).toBeGreaterThan(0);
    expect(await snapshot(redis.client(), [alice.user])).toEqual(before);
  });

  it('authentication comes first: bad input with a wrong key is a 401', async () => {
    const alice = await account({ here_isolines_quota: '100' });
    const reply = await call(`${base}/u/${alice.user}/api/v1/isolines?lat=999&api_key=wrong`);
    expect(reply.status).toBe(401);
  });
});

describe('quota report and health', () => {
  it('GET /quota answers the CARTO blocks; an org member sees the org quota, price and pooled use', async () => {
    const org = name('o');
    await writeOrg(redis.client(), org, {
      geocoding_quota: '1000',
      here_isolines_quota: '40',
      geocoding_block_price: '1500',
      geocoder_provider: 'geonames',
      isolines_provider: 'straightline',
    });
    const alice = await account({ organization: org, soft_here_isolines_limit: 'true' });
    const bob = await account({ organization: org });
    expect((await call(bob.url('geocode?q=Lyon'))).status).toBe(200);
    expect((await call(alice.url('geocode?q=Lima'))).status).toBe(200);
    await settle();
    const before = await snapshot(redis.client(), [alice.user, org]);
    const reply = await call(alice.url('quota'));
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      geocoding: { quota: 1000, block_price: 1500, monthly_use: 2, hard_limit: true },
      here_isolines: { quota: 40, block_price: null, monthly_use: 0, hard_limit: false },
      mapzen_routing: { quota: 0, block_price: null, monthly_use: 0, hard_limit: true },
      geocoder_provider: 'geonames',
      isolines_provider: 'straightline',
      routing_provider: 'mapzen', // neither hash names one: the CARTO default
    });
    expect(await snapshot(redis.client(), [alice.user, org])).toEqual(before);
    expect((await call(`${base}/u/${alice.user}/api/v1/quota?api_key=${bob.key}`)).status).toBe(401);
  });

  it('GET /healthz is liveness (200 whatever Redis does); GET /readyz is 503 while Redis does not answer', async () => {
    const up = await call(`${base}/healthz`);
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ status: 'ok', journal: { geocoding: { size: 0 } } });
    expect(await call(`${base}/readyz`)).toMatchObject({ status: 200, body: { ready: true, redis: 'up', reasons: [] } });
    const dead = new Tollgate({ redis: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 200, logger: SILENT_LOGGER });
    try {
      const offline = createDemoApp({ tollgate: dead, geocoder: gazetteer, isolines: new StraightLineIsolines(), logger: SILENT_LOGGER });
      const served = await servers.start(offline.app);
      expect((await call(`${served.url}/healthz`)).status).toBe(200);
      const down = await call(`${served.url}/readyz`);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'not ready', ready: false, redis: 'down', failOpen: [] });
      expect(down.body.reasons).toEqual(['Redis does not answer and no guard serves in fail-open mode']);
      const refused = await call(`${served.url}/u/someone/api/v1/geocode?q=Lyon&api_key=k`);
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE' });
    } finally {
      await dead.close();
    }
  });

  it('unknown paths are a 404 problem', async () => {
    const reply = await call(`${base}/nope`);
    expect(reply.status).toBe(404);
    expect(reply.body).toMatchObject({ code: 'ERR_TOLLGATE_NOT_FOUND' });
  });
});

// The OpenAPI description: every mounted route is in it, every example validates, and real answers match its schemas.
import type { Router } from 'express';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { dashboardDataSchema, searchSchema } from '../../src/admin/dashboard/openapi.js';
import { orgCreditsSchema, orgViewSchema, reportRowSchema, usageSchema, userCreditsSchema, userViewSchema } from '../../src/admin/openapi.js';
import { createDemoApp } from '../../demo/src/app.js';
import type { GeocodingProvider } from '../../demo/src/gazetteer.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import {
  bulkGeocodeResponse,
  demoApiPaths,
  demoOpenApi,
  geocodeResponse,
  healthResponse,
  isolinesResponse,
  quotaResponse,
  readyResponse,
  routeResponse,
} from '../../demo/src/openapi.js';
import { examplesIn } from '../../src/http/openapi-common.js';
import { createAdminRouter, Tollgate } from '../../src/index.js';
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
const TOKEN = 'openapi-test-token-0123456789';
const places: GeocodingProvider = {
  name: 'tiny',
  search: (q) => (q.startsWith('Lyon') ? [{ id: 2996944, name: 'Lyon', country: 'FR', lat: 45.75, lon: 4.85, population: 472317 }] : []),
};

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** `METHOD /path/{param}` of every route in a router, nested routers included (mounted without a prefix). */
function routesOf(router: { stack: Layer[] }, prefix: string, skip: (inner: Layer[]) => boolean = () => false): string[] {
  const found: string[] = [];
  for (const layer of router.stack) {
    if (layer.route !== undefined) {
      const path = `${prefix}${layer.route.path}`.replace(/:(\w+)/g, '{$1}');
      for (const method of Object.keys(layer.route.methods)) found.push(`${method.toUpperCase()} ${path}`);
    } else if (layer.handle?.stack !== undefined && !skip(layer.handle.stack)) {
      found.push(...routesOf({ stack: layer.handle.stack }, prefix, skip));
    }
  }
  return found;
}

const isAdminRouter = (stack: Layer[]): boolean => stack.some((layer) => layer.route?.path === '/users/:user');

describe('OpenAPI description', () => {
  const document = demoOpenApi({ admin: true, metrics: true });
  const described = new Set(
    Object.entries(document.paths ?? {}).flatMap(([path, item]) => Object.keys(item ?? {}).map((method) => `${method.toUpperCase()} ${path}`)),
  );

  it('is OpenAPI 3.1 and describes every route the demo app and the admin router mount', () => {
    expect(document.openapi).toBe('3.1.0');
    const tollgate = new Tollgate({ redis: redis.client(), logger: SILENT_LOGGER });
    const demo = createDemoApp({ tollgate, geocoder: places, isolines: new StraightLineIsolines(), adminToken: TOKEN, logger: SILENT_LOGGER, metrics: createMetrics().registry });
    const appRouter = (demo.app as unknown as { router: { stack: Layer[] } }).router;
    const demoRoutes = routesOf(appRouter, '', isAdminRouter);
    const adminRoutes = routesOf(createAdminRouter({ tollgate, token: TOKEN }) as unknown as { stack: Layer[] }, '/admin');
    expect(demoRoutes).toContain('GET /u/{username}/api/v1/geocode');
    expect(adminRoutes).toContain('GET /admin/dashboard/data/view');
    const missing = [...demoRoutes, ...adminRoutes].filter((route) => !described.has(route));
    expect(missing).toEqual([]);
    // And nothing is described that is not mounted.
    const mounted = new Set([...demoRoutes, ...adminRoutes]);
    expect([...described].filter((route) => !mounted.has(route))).toEqual([]);
  });

  it('every example validates against the schema it illustrates, and is in the served document', () => {
    const examples = examplesIn(demoApiPaths({ admin: true, metrics: true }));
    expect(examples.length).toBeGreaterThan(30);
    for (const { where, schema, example } of examples) {
      const result = schema.safeParse(example);
      expect(result.success, `${where}: ${result.success ? '' : result.error.message}`).toBe(true);
    }
    const served = JSON.stringify(document);
    expect(served).toContain('"You have reached the limit of your quota"');
  });

  it('real answers of the demo and admin endpoints match the described schemas', async () => {
    const tollgate = new Tollgate({ redis: redis.client(), logger: SILENT_LOGGER });
    const demo = createDemoApp({ tollgate, geocoder: places, isolines: new StraightLineIsolines(), adminToken: TOKEN, logger: SILENT_LOGGER });
    const { url } = await servers.start(demo.app);
    const org = name('org');
    const user = name('u');
    await writeOrg(redis.client(), org, { geocoding_quota: '100', here_isolines_quota: '10', mapzen_routing_quota: '10', geocoder_provider: 'geonames', isolines_provider: 'straightline', credits_enabled: 'true', credits_balance_millicredits: '5000' });
    await writeUser(redis.client(), user, { organization: org, map_key: 'the-key' });
    const admin = { headers: { authorization: `Bearer ${TOKEN}` } };
    const check = async (schema: z.ZodType, path: string, init?: RequestInit): Promise<void> => {
      const reply = await call(`${url}${path}`, init);
      expect(reply.status, path).toBeLessThan(300);
      const result = schema.safeParse(reply.body);
      expect(result.success, `${path}: ${result.success ? '' : result.error.message}`).toBe(true);
    };
    const u = `/u/${user}/api/v1`;
    await check(geocodeResponse, `${u}/geocode?q=Lyon&api_key=the-key`);
    await check(bulkGeocodeResponse, `${u}/geocode?api_key=the-key`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"addresses":["Lyon","Nowhere"]}' });
    await check(isolinesResponse, `${u}/isolines?lat=1&lon=2&range=60,120&api_key=the-key`);
    await check(quotaResponse, `${u}/quota?api_key=the-key`);
    await check(routeResponse, `${u}/route?from=40.4,-3.7&to=41.4,2.2&api_key=the-key`);
    await demo.guards.geocoding.drain();
    await demo.guards.isolines.drain();
    await check(healthResponse, '/healthz');
    await check(readyResponse, '/readyz');
    await check(userViewSchema, `/admin/users/${user}`, admin);
    await check(orgViewSchema, `/admin/orgs/${org}`, admin);
    await check(usageSchema, `/admin/users/${user}/usage`, admin);
    await check(orgCreditsSchema, `/admin/orgs/${org}/credits`, admin);
    await check(userCreditsSchema, `/admin/users/${user}/credits`, admin);
    const rows = await fetch(`${url}/admin/reports?org=${org}&frame=week`, admin);
    const json = await rows.json();
    const parsed = reportRowSchema.array().safeParse(json);
    expect(parsed.success, JSON.stringify(json).slice(0, 400) + (parsed.success ? '' : parsed.error.message)).toBe(true);
    expect((json as unknown[]).length).toBeGreaterThan(0);
    await check(searchSchema, `/admin/dashboard/data/search?q=${user}`, admin);
    await check(dashboardDataSchema, `/admin/dashboard/data/view?user=${user}`, admin);
    await check(dashboardDataSchema, `/admin/dashboard/data/view?org=${org}`, admin);
  });
});

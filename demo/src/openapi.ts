// The OpenAPI 3.1 description of the demo service: its public API, health, metrics, and the admin API when mounted.
import { z } from 'zod';
import { createDocument } from 'zod-openapi';
import { ADMIN_SECURITY_SCHEMES, adminPaths, body, dashboardPaths, jsonResponse, problemResponse } from 'tollgate';
import { DEFAULT_LIMITS } from './inputs.js';

const user = z.string().min(1).max(128).regex(/^[^:*?[\]{}\s]+$/);
const apiKeyQuery = z.string().optional().meta({ description: 'The user’s API key (or send Authorization: Bearer <key>)' });
const point = z.strictObject({ type: z.literal('Point'), coordinates: z.tuple([z.number(), z.number()]) });
const placeProperties = {
  name: z.string(),
  country: z.string(),
  population: z.number().int(),
  geonames_id: z.number().int(),
};

const geocodeFeature = z.strictObject({ type: z.literal('Feature'), geometry: point, properties: z.strictObject(placeProperties) });
/** `GET /u/{user}/api/v1/geocode`. */
export const geocodeResponse = z
  .strictObject({ type: z.literal('FeatureCollection'), query: z.string(), features: z.array(geocodeFeature) })
  .meta({ id: 'GeocodeResult' });
/** `POST /u/{user}/api/v1/geocode`. */
export const bulkGeocodeResponse = z
  .strictObject({
    type: z.literal('FeatureCollection'),
    features: z.array(
      z.strictObject({
        type: z.literal('Feature'),
        geometry: point,
        properties: z.strictObject({ index: z.number().int(), query: z.string(), ...placeProperties }),
      }),
    ),
    unmatched: z.array(z.number().int()),
  })
  .meta({ id: 'BulkGeocodeResult' });
/** `GET /u/{user}/api/v1/isolines`. */
export const isolinesResponse = z
  .strictObject({
    type: z.literal('FeatureCollection'),
    approximation: z.literal('straight-line').nullable(),
    features: z.array(
      z.strictObject({
        type: z.literal('Feature'),
        geometry: z.strictObject({ type: z.literal('Polygon'), coordinates: z.array(z.array(z.tuple([z.number(), z.number()]))) }),
        properties: z.strictObject({ range: z.number().int(), type: z.enum(['isochrone', 'isodistance']), mode: z.enum(['walk', 'car']), provider: z.string() }),
      }),
    ),
  })
  .meta({ id: 'IsolinesResult' });
const block = z.strictObject({ quota: z.number().int(), block_price: z.number().int().nullable(), monthly_use: z.number().int(), hard_limit: z.boolean() });
/** `GET /u/{user}/api/v1/quota`: the CARTO blocks of SPEC 5. */
export const quotaResponse = z
  .strictObject({
    geocoding: block,
    here_isolines: block,
    mapzen_routing: block,
    geocoder_provider: z.string(),
    isolines_provider: z.string(),
    routing_provider: z.string(),
  })
  .meta({ id: 'QuotaReport' });
const journal = z.strictObject({ size: z.number().int(), maxEntries: z.number().int(), unwrittenUnits: z.number().int(), written: z.number().int(), dropped: z.number().int(), lost: z.number().int() });
/** `GET /healthz`. */
export const healthResponse = z.strictObject({ status: z.literal('ok'), journal: z.strictObject({ geocoding: journal, isolines: journal, routing: journal }) }).meta({ id: 'Health' });
/** `GET /u/{user}/api/v1/route`. */
export const routeResponse = z
  .strictObject({
    type: z.literal('Feature'),
    geometry: z.strictObject({ type: z.literal('LineString'), coordinates: z.array(z.tuple([z.number(), z.number()])) }),
    properties: z.strictObject({
      mode: z.enum(['walk', 'bicycle', 'car']),
      distance_m: z.number(),
      duration_s: z.number(),
      provider: z.string(),
      approximation: z.literal('straight-line').nullable(),
    }),
  })
  .meta({ id: 'RouteResult' });
/** `GET /readyz`. */
export const readyResponse = z
  .strictObject({
    status: z.enum(['ready', 'not ready']),
    ready: z.boolean(),
    redis: z.enum(['up', 'down']),
    failOpen: z.array(z.string()),
    reasons: z.array(z.string()),
    reason: z.string().optional(),
    demoAccounts: z.enum(['present', 'reseeded']).optional(),
  })
  .meta({ id: 'Readiness' });

const MADRID = { type: 'Feature', geometry: { type: 'Point', coordinates: [-3.70256, 40.4165] }, properties: { name: 'Madrid', country: 'ES', population: 3255944, geonames_id: 3117735 } };
const QUOTA_EXCEEDED = {
  type: 'urn:tollgate:problem:quota-exceeded', title: 'Quota exceeded', status: 429, detail: 'You have reached the limit of your quota',
  code: 'ERR_TOLLGATE_QUOTA_EXCEEDED', service: 'geocoding', serviceType: 'geocoder_geonames', quota: 1000, used: 1000, cost: 1, resetsAt: '2026-12-01T00:00:00.000Z',
};
const guardedErrors = {
  '400': problemResponse('Bad input, refused before anything is counted (ERR_TOLLGATE_BAD_REQUEST)'),
  '401': problemResponse('Missing, unknown or wrong API key; nothing counted'),
  '403': problemResponse('The org’s credit budget does not cover the request (ERR_TOLLGATE_CREDITS_EXHAUSTED)'),
  '429': problemResponse('Over quota; Retry-After until the next cycle', QUOTA_EXCEEDED),
  '503': problemResponse('Redis unavailable (fail-closed) or the fail-open journal is full'),
};
const rateLimitHeaders = z.object({}).meta({ description: 'RateLimit-Policy and RateLimit headers (draft-ietf-httpapi-ratelimit-headers)' });
void rateLimitHeaders;

/** What the demo mounts besides its fixed routes. */
export interface DescribedMounts {
  /** The admin API and dashboard under /admin (TOLLGATE_ADMIN_TOKEN set). */
  readonly admin: boolean;
  /** GET /metrics (a metrics registry given). */
  readonly metrics: boolean;
}

/** The demo's own paths. */
function demoPaths(): Record<string, Record<string, unknown>> {
  const tags = ['demo'];
  const path = z.object({ username: user });
  return {
    '/u/{username}/api/v1/geocode': {
      get: {
        tags,
        summary: 'Forward geocode one city (cost 1; no match counts as empty)',
        requestParams: {
          path,
          query: z.object({
            q: z.string().min(1).max(200).meta({ description: 'City name, optionally followed by ", CC"', example: 'Madrid, ES' }),
            country: z.string().length(2).optional().meta({ description: 'ISO country code filter' }),
            limit: z.coerce.number().int().min(1).max(DEFAULT_LIMITS.maxResults).optional(),
            api_key: apiKeyQuery,
          }),
        },
        responses: {
          '200': jsonResponse('GeoJSON FeatureCollection', geocodeResponse, { type: 'FeatureCollection', query: 'Madrid, ES', features: [MADRID] }, 'application/geo+json'),
          ...guardedErrors,
        },
      },
      post: {
        tags,
        summary: `Bulk geocode (cost N = the number of addresses, at most ${DEFAULT_LIMITS.maxBulk}, judged whole)`,
        requestParams: { path, query: z.object({ api_key: apiKeyQuery }) },
        requestBody: body(z.strictObject({ addresses: z.array(z.string().min(1).max(200)).min(1).max(DEFAULT_LIMITS.maxBulk) }), { addresses: ['Lyon', 'Osaka', 'Nowhereville'] }),
        responses: {
          '200': jsonResponse('Best match per address; `unmatched` lists the indices without one', bulkGeocodeResponse, {
            type: 'FeatureCollection',
            features: [{ ...MADRID, properties: { index: 0, query: 'Madrid', ...MADRID.properties } }],
            unmatched: [1],
          }, 'application/geo+json'),
          ...guardedErrors,
        },
      },
    },
    '/u/{username}/api/v1/isolines': {
      get: {
        tags,
        summary: 'Straight-line isolines, one polygon per range (cost = the number of ranges)',
        requestParams: {
          path,
          query: z.object({
            lat: z.coerce.number().min(-90).max(90),
            lon: z.coerce.number().min(-180).max(180),
            range: z.string().regex(/^\d+(,\d+)*$/).meta({ description: `Up to ${DEFAULT_LIMITS.maxRanges} comma-separated ranges: seconds (isochrone) or metres (isodistance)`, example: '300,600,900' }),
            type: z.enum(['isochrone', 'isodistance']).optional(),
            mode: z.enum(['walk', 'car']).optional(),
            api_key: apiKeyQuery,
          }),
        },
        responses: {
          '200': jsonResponse('GeoJSON polygons', isolinesResponse, {
            type: 'FeatureCollection', approximation: 'straight-line',
            features: [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[-3.7, 40.42], [-3.69, 40.41], [-3.71, 40.41], [-3.7, 40.42]]] }, properties: { range: 300, type: 'isochrone', mode: 'walk', provider: 'straightline' } }],
          }, 'application/geo+json'),
          ...guardedErrors,
        },
      },
    },
    '/u/{username}/api/v1/route': {
      get: {
        tags,
        summary: 'A straight-line route between two points (cost 1 under routing)',
        requestParams: {
          path,
          query: z.object({
            from: z.string().meta({ description: 'lat,lon', example: '40.4168,-3.7038' }),
            to: z.string().meta({ description: 'lat,lon', example: '41.3874,2.1686' }),
            mode: z.enum(['walk', 'bicycle', 'car']).optional(),
            api_key: apiKeyQuery,
          }),
        },
        responses: {
          '200': jsonResponse('GeoJSON LineString with distance and duration', routeResponse, {
            type: 'Feature', geometry: { type: 'LineString', coordinates: [[-3.7038, 40.4168], [2.1686, 41.3874]] },
            properties: { mode: 'car', distance_m: 505000, duration_s: 36360, provider: 'straightline', approximation: 'straight-line' },
          }, 'application/geo+json'),
          ...guardedErrors,
        },
      },
    },
    '/u/{username}/api/v1/quota': {
      get: {
        tags,
        summary: 'The CARTO dashboard blocks (SPEC 5); counts nothing',
        requestParams: { path, query: z.object({ api_key: apiKeyQuery }) },
        responses: {
          '200': jsonResponse('Quota blocks', quotaResponse, {
            geocoding: { quota: 1000, block_price: 150, monthly_use: 4, hard_limit: true },
            here_isolines: { quota: 500, block_price: 300, monthly_use: 3, hard_limit: true },
            mapzen_routing: { quota: 0, block_price: null, monthly_use: 0, hard_limit: true },
            geocoder_provider: 'geonames', isolines_provider: 'straightline', routing_provider: 'mapzen',
          }),
          '401': guardedErrors['401'],
          '503': guardedErrors['503'],
        },
      },
    },
    '/healthz': {
      get: {
        tags: ['operations'],
        summary: 'Liveness: 200 while the process answers, whatever Redis does',
        responses: { '200': jsonResponse('Alive', healthResponse, { status: 'ok', journal: { geocoding: { size: 0, maxEntries: 10000, unwrittenUnits: 0, written: 0, dropped: 0, lost: 0 }, isolines: { size: 0, maxEntries: 10000, unwrittenUnits: 0, written: 0, dropped: 0, lost: 0 }, routing: { size: 0, maxEntries: 10000, unwrittenUnits: 0, written: 0, dropped: 0, lost: 0 } } }) },
      },
    },
    '/readyz': {
      get: {
        tags: ['operations'],
        summary: 'Readiness: 503 while Redis does not answer, unless a guard serves in fail-open mode',
        responses: {
          '200': jsonResponse('Ready', readyResponse, { status: 'ready', ready: true, redis: 'up', failOpen: [], reasons: [], demoAccounts: 'present' }),
          '503': jsonResponse('Not ready', readyResponse, { status: 'not ready', ready: false, redis: 'down', failOpen: [], reasons: ['Redis does not answer and no guard serves in fail-open mode'], reason: 'Redis does not answer and no guard serves in fail-open mode' }),
        },
      },
    },
    '/metrics': {
      get: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format); see docs/observability.md',
        responses: { '200': jsonResponse('Metrics', z.string(), '# TYPE tollgate_decisions_total counter\n', 'text/plain') },
      },
    },
    '/openapi.json': { get: { tags: ['operations'], summary: 'This description', responses: { '200': jsonResponse('OpenAPI 3.1', z.looseObject({ openapi: z.string() })) } } },
    '/docs': { get: { tags: ['operations'], summary: 'Interactive reference of this description (works offline)', responses: { '200': jsonResponse('HTML page', z.string(), undefined, 'text/html') } } },
    '/docs/init.js': { get: { tags: ['operations'], summary: 'The reference page’s start script (its other assets are files under /docs/assets/)', responses: { '200': jsonResponse('Script', z.string(), undefined, 'application/javascript') } } },
  };
}

/** The paths object before conversion, zod schemas and examples included (the test reads it). */
export function demoApiPaths(options: DescribedMounts): Record<string, Record<string, unknown>> {
  const { '/metrics': metrics, ...paths } = demoPaths();
  return {
    ...paths,
    ...(options.metrics ? { '/metrics': metrics! } : {}),
    ...(options.admin ? { ...adminPaths('/admin'), ...dashboardPaths('/admin') } : {}),
  };
}

/** The OpenAPI 3.1 document of the demo service. */
export function demoOpenApi(options: DescribedMounts): ReturnType<typeof createDocument> {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Tollgate demo geocoding and isolines service',
      version: '0.1.0',
      description: 'Quota-guarded demo endpoints (docs/demo.md), health, metrics, and the admin API (docs/admin.md) when TOLLGATE_ADMIN_TOKEN is set. Every error is RFC 9457 problem+json with a stable code (docs/errors.md).',
    },
    components: options.admin ? { securitySchemes: ADMIN_SECURITY_SCHEMES } : {},
    paths: demoApiPaths(options) as Parameters<typeof createDocument>[0]['paths'],
  });
}

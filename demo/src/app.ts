// The demo geocoding and isolines service: an Express app that uses Tollgate's middleware as any customer would.
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Registry } from 'prom-client';
import {
  ERROR_CODES,
  HTTP_ERROR_CODES,
  HttpProblem,
  InvalidInputError,
  PROBLEM_TYPE_PREFIX,
  QUOTA_KINDS,
  Tollgate,
  TollgateError,
  apiKeyAuth,
  badRequest,
  createAdminRouter,
  markEmpty,
  markOutcome,
  problemOf,
  quotaGuard,
  quotaKindSpec,
  sendProblem,
  tollgateLocals,
  type QuotaGuard,
  type QuotaInfo,
  type QuotaKind,
  type TollgateLogger,
} from 'tollgate';
import type { GeocodingProvider, Place } from './gazetteer.js';
import { DEFAULT_LIMITS, limitsSchema, parseBulkBody, parseGeocodeQuery, parseIsolinesQuery, parseRouteQuery, type DemoLimits } from './inputs.js';
import type { IsolinesProvider, IsolinesRequest } from './isolines.js';
import { StraightLineRouting, type RouteRequest, type RoutingProvider } from './routing.js';
import { apiDescription } from './openapi-routes.js';
import { readiness } from './readiness.js';

/** The service's own check behind `GET /readyz`: ready, or why not. */
export type Readiness = { readonly ready: true; readonly [detail: string]: unknown } | { readonly ready: false; readonly reason: string };

/** Options of {@link createDemoApp}. */
export interface DemoAppOptions {
  readonly tollgate: Tollgate;
  readonly geocoder: GeocodingProvider;
  readonly isolines: IsolinesProvider;
  /** The routing backend; default {@link StraightLineRouting}. */
  readonly routing?: RoutingProvider;
  /** Overrides of {@link DEFAULT_LIMITS}. */
  readonly limits?: Partial<DemoLimits>;
  /** Quota kinds that keep serving while Redis is down (see docs/http.md). Default none. */
  readonly failOpen?: readonly QuotaKind[];
  /** Passed to each guard; tests shorten it. */
  readonly flushIntervalMs?: number;
  /** Where the demo and its guards log (a pino logger). Default the Tollgate client's `logger`. */
  readonly logger?: TollgateLogger;
  /** When set, served at `GET /metrics` in Prometheus text format (`createMetrics().registry`). */
  readonly metrics?: Registry;
  /** When set, the admin API (docs/admin.md) is mounted at `/admin` behind this bearer token. */
  readonly adminToken?: string;
  /** Checks behind `GET /readyz` beyond Redis answering (the service re-seeds lost demo accounts). Default none. */
  readonly readiness?: () => Promise<Readiness>;
}

const optionsSchema = z.strictObject({
  tollgate: z.custom<Tollgate>((value) => value instanceof Tollgate, 'must be a Tollgate client'),
  geocoder: z.custom<GeocodingProvider>((value) => typeof (value as GeocodingProvider | null)?.search === 'function', 'must be a GeocodingProvider'),
  isolines: z.custom<IsolinesProvider>((value) => typeof (value as IsolinesProvider | null)?.isolines === 'function', 'must be an IsolinesProvider'),
  routing: z.custom<RoutingProvider>((value) => typeof (value as RoutingProvider | null)?.route === 'function', 'must be a RoutingProvider').optional(),
  limits: limitsSchema.optional(),
  failOpen: z.array(z.enum(QUOTA_KINDS as [QuotaKind, ...QuotaKind[]])).optional(),
  flushIntervalMs: z.number().int().min(10).max(60_000).optional(),
  logger: z.custom<TollgateLogger>((value) => typeof (value as TollgateLogger | null)?.warn === 'function', 'must be a logger (pino)').optional(),
  metrics: z.custom<Registry>((value) => typeof (value as Registry | null)?.metrics === 'function', 'must be a prom-client Registry').optional(),
  adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
  readiness: z.custom<() => Promise<Readiness>>((value) => typeof value === 'function', 'must be a function').optional(),
});

/** The app and the hooks its owner needs for health and shutdown. */
export interface DemoApp {
  readonly app: Express;
  /** The guards in front of each quota kind. */
  readonly guards: Readonly<Record<QuotaKind, QuotaGuard>>;
  /** Settles what has ended and makes a last journal write-back; call after the HTTP server closed. */
  close(): Promise<void>;
}

/** Where the handler finds the input its cost function already validated. */
interface DemoLocals {
  geocode?: { kind: 'single'; q: string; limit: number; country?: string } | { kind: 'bulk'; addresses: readonly string[] };
  isolines?: IsolinesRequest;
  route?: RouteRequest;
}

const GEOJSON = 'application/geo+json';

function demoLocals(res: Response): DemoLocals {
  const locals = res.locals as { demo?: DemoLocals };
  locals.demo ??= {};
  return locals.demo;
}

function placeFeature(place: Place, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [place.lon, place.lat] },
    properties: { ...extra, name: place.name, country: place.country, population: place.population, geonames_id: place.id },
  };
}

/** The CARTO dashboard block of one quota kind (SPEC section 5). */
function dashboardBlock(info: QuotaInfo): Record<string, unknown> {
  return { quota: info.quota, block_price: info.blockPrice, monthly_use: info.used, hard_limit: !info.softLimit };
}

/**
 * Builds the demo app:
 * `GET|POST /u/:username/api/v1/geocode`, `GET /u/:username/api/v1/isolines`,
 * `GET /u/:username/api/v1/route`, `GET /u/:username/api/v1/quota` and `GET /healthz`:
 * one endpoint per CARTO quota kind (geocoding, isolines, routing).
 */
export function createDemoApp(options: DemoAppOptions): DemoApp {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`);
    throw new InvalidInputError(ERROR_CODES.invalidOptions, `invalid demo options: ${detail.join('; ')}`);
  }
  const config = Object.freeze(parsed.data);
  const limits: DemoLimits = Object.freeze({ ...DEFAULT_LIMITS, ...config.limits });
  const { tollgate, geocoder, isolines } = config;
  const routing = config.routing ?? new StraightLineRouting();
  const log = config.logger ?? tollgate.logger;
  const failOpen = new Set(config.failOpen ?? []);
  const guardExtras = {
    logger: log,
    ...(config.flushIntervalMs === undefined ? {} : { flushIntervalMs: config.flushIntervalMs }),
  };

  const geocodingGuard = quotaGuard({
    tollgate,
    kind: 'geocoding',
    failOpen: failOpen.has('geocoding'),
    ...guardExtras,
    // Validation lives in the cost function so a bad request is refused before anything is counted.
    cost: (req, res) => {
      if (req.method === 'POST') {
        const addresses = parseBulkBody(req.body, limits);
        demoLocals(res).geocode = { kind: 'bulk', addresses };
        return addresses.length;
      }
      demoLocals(res).geocode = { kind: 'single', ...parseGeocodeQuery(req.query as Record<string, unknown>, limits) };
      return 1;
    },
  });
  const isolinesGuard = quotaGuard({
    tollgate,
    kind: 'isolines',
    failOpen: failOpen.has('isolines'),
    ...guardExtras,
    cost: (req, res) => {
      const request = parseIsolinesQuery(req.query as Record<string, unknown>, limits);
      demoLocals(res).isolines = request;
      return request.ranges.length;
    },
  });
  const routingGuard = quotaGuard({
    tollgate,
    kind: 'routing',
    failOpen: failOpen.has('routing'),
    ...guardExtras,
    // One route costs 1, whatever its length.
    cost: (req, res) => {
      demoLocals(res).route = parseRouteQuery(req.query as Record<string, unknown>);
      return 1;
    },
  });
  const authenticated = apiKeyAuth({ tollgate });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  const guards = { geocoding: geocodingGuard, isolines: isolinesGuard, routing: routingGuard };
  // Liveness: the process answers. Redis is readiness's business, not a reason to restart.
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', journal: { geocoding: geocodingGuard.journalStats(), isolines: isolinesGuard.journalStats(), routing: routingGuard.journalStats() } });
  });
  app.get('/readyz', async (_req, res) => {
    const state = await readiness(tollgate, guards, config.readiness);
    res.status(state.ready ? 200 : 503).json({ status: state.ready ? 'ready' : 'not ready', ...state });
  });
  if (config.metrics !== undefined) {
    const registry = config.metrics;
    app.get('/metrics', async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    });
  }
  app.use(apiDescription({ admin: config.adminToken !== undefined, metrics: config.metrics !== undefined }));

  const base = '/u/:username/api/v1';

  // The data's licence (GeoNames: CC BY 4.0) asks for credit wherever its results are shown.
  const attribution = geocoder.attribution === undefined ? {} : { attribution: geocoder.attribution };

  const geocode = (_req: Request, res: Response): void => {
    const input = demoLocals(res).geocode;
    if (input === undefined) throw new Error('geocode input missing: the guard did not run');
    if (input.kind === 'single') {
      const places = geocoder.search(input.q, input.limit, input.country);
      if (places.length === 0) markEmpty(res);
      res.type(GEOJSON).json({
        type: 'FeatureCollection',
        query: input.q,
        features: places.map((place) => placeFeature(place)),
        ...attribution,
      });
      return;
    }
    const features: Array<Record<string, unknown>> = [];
    const unmatched: number[] = [];
    input.addresses.forEach((address, index) => {
      const [best] = geocoder.search(address, 1);
      if (best === undefined) unmatched.push(index);
      else features.push(placeFeature(best, { index, query: address }));
    });
    // Rows with a result stay in success_responses, rows without one move to empty_responses.
    markOutcome(res, { success: features.length, empty: unmatched.length });
    res.type(GEOJSON).json({ type: 'FeatureCollection', features, unmatched, ...attribution });
  };

  app.get(`${base}/geocode`, geocodingGuard, geocode);
  app.post(`${base}/geocode`, express.json({ limit: limits.maxBodyBytes, strict: true }), geocodingGuard, geocode);

  app.get(`${base}/isolines`, isolinesGuard, async (_req, res) => {
    const request = demoLocals(res).isolines;
    if (request === undefined) throw new Error('isolines input missing: the guard did not run');
    const shapes = await isolines.isolines(request);
    res.type(GEOJSON).json({
      type: 'FeatureCollection',
      // Said in every response, so nobody mistakes a circle for a drive-time area.
      approximation: isolines.followsRoads ? null : 'straight-line',
      features: shapes.map((shape) => ({
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: shape.polygon },
        properties: { range: shape.range, type: request.type, mode: request.mode, provider: isolines.name },
      })),
    });
  });

  app.get(`${base}/route`, routingGuard, async (_req, res) => {
    const request = demoLocals(res).route;
    if (request === undefined) throw new Error('route input missing: the guard did not run');
    const route = await routing.route(request);
    res.type(GEOJSON).json({
      type: 'Feature',
      geometry: { type: 'LineString', coordinates: route.line },
      properties: {
        mode: request.mode,
        distance_m: route.distanceM,
        duration_s: route.durationS,
        provider: routing.name,
        // Said in every response, so nobody mistakes a crow-flies line for directions.
        approximation: routing.followsRoads ? null : 'straight-line',
      },
    });
  });

  app.get(`${base}/quota`, authenticated, async (_req, res) => {
    const identity = tollgateLocals(res).identity;
    if (identity === undefined) throw new Error('identity missing: authentication did not run');
    const infos = await Promise.all(QUOTA_KINDS.map((kind) => tollgate.quota({ user: identity.user, kind: kind })));
    const body: Record<string, unknown> = {};
    for (const info of infos) body[quotaKindSpec(info.kind).dashboardName] = dashboardBlock(info);
    const byKind = Object.fromEntries(infos.map((info) => [info.kind, info.provider]));
    body.geocoder_provider = byKind.geocoding;
    body.isolines_provider = byKind.isolines;
    body.routing_provider = byKind.routing;
    res.json(body);
  });

  if (config.adminToken !== undefined) app.use('/admin', createAdminRouter({ tollgate, token: config.adminToken }));

  app.use((_req, res) => {
    sendProblem(res, new HttpProblem({
      type: `${PROBLEM_TYPE_PREFIX}not-found`,
      title: 'Not found',
      status: 404,
      detail: 'No such endpoint; see demo/README.md',
      code: HTTP_ERROR_CODES.notFound,
    }));
  });

  app.use(errorHandler(log));

  return {
    app,
    guards: { geocoding: geocodingGuard, isolines: isolinesGuard, routing: routingGuard },
    close: async () => {
      await Promise.all([geocodingGuard.close(), isolinesGuard.close(), routingGuard.close()]);
    },
  };
}

/** Body parser errors become 400s; everything else a 500 whose cause stays in the log. */
function errorHandler(log: TollgateLogger): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error instanceof HttpProblem) {
      sendProblem(res, error);
      return;
    }
    // Express could not percent-decode a route parameter (`/u/%E0%A4%A/...`): the path, not the body, is at fault.
    if (error instanceof URIError) {
      sendProblem(res, badRequest('The request path is not valid percent-encoding (UTF-8)', 'malformed-path'));
      return;
    }
    const parserError = error as { type?: unknown; status?: unknown };
    if (parserError.type === 'entity.too.large') {
      sendProblem(res, badRequest('The request body is too large', 'body-too-large'));
      return;
    }
    if (parserError.type === 'entity.parse.failed') {
      sendProblem(res, badRequest('The request body is not valid JSON', 'malformed-json'));
      return;
    }
    if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
      sendProblem(res, badRequest('The request body could not be read', 'invalid-body'));
      return;
    }
    if (error instanceof TollgateError) {
      const problem = problemOf(error);
      if (problem.status >= 500) log.error({ event: 'demo.request_failed', code: error.code, error: error.message }, problem.body.title);
      sendProblem(res, problem);
      return;
    }
    log.error({ event: 'demo.request_failed', code: HTTP_ERROR_CODES.internal, error: error instanceof Error ? error.message : String(error), stack: error instanceof Error ? error.stack : undefined }, 'request failed on the server');
    sendProblem(res, new HttpProblem({
      type: `${PROBLEM_TYPE_PREFIX}internal`,
      title: 'Internal server error',
      status: 500,
      detail: 'The request failed on the server',
      code: HTTP_ERROR_CODES.internal,
    }));
  };
}

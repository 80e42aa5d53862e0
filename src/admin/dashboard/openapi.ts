// The OpenAPI description of the dashboard's page and JSON endpoints, as zod schemas with checked examples.
import { z } from 'zod';
import 'zod-openapi';
import { jsonResponse, problemResponse } from '../../http/openapi-common.js';
import { orgCreditsSchema, userCreditsSchema } from '../openapi.js';

const name = z.string().min(1).max(128);
const kinds = z.enum(['geocoding', 'isolines', 'routing']);
const perKind = z.strictObject({ geocoding: z.number(), isolines: z.number(), routing: z.number() });

/** `GET /dashboard/data/search`. */
export const searchSchema = z.strictObject({ hits: z.array(z.strictObject({ type: z.enum(['user', 'org']), name })) }).meta({ id: 'DashboardSearch' });

/** `GET /dashboard/data/view`. */
export const dashboardDataSchema = z
  .strictObject({
    type: z.enum(['user', 'org']),
    name,
    org: name.nullable(),
    today: z.iso.date(),
    services: z.array(
      z.strictObject({
        kind: kinds,
        serviceType: z.string(),
        provider: z.string(),
        quota: z.number().int().min(0),
        used: z.number().int().min(0),
        remaining: z.number().int().min(0),
        softLimit: z.boolean(),
        cycleStart: z.iso.datetime(),
        resetsAt: z.iso.datetime(),
        daily: z.array(z.strictObject({ date: z.iso.date(), used: z.number() })),
        projection: z.strictObject({
          dailyRate: z.number().min(0),
          status: z.enum(['exhausted', 'runs_out', 'lasts', 'idle', 'soft_limit', 'no_quota']),
          date: z.iso.date().nullable(),
        }),
      }),
    ),
    members: z.array(z.strictObject({ username: name, used: perKind, share: perKind })),
    credits: z.union([userCreditsSchema, orgCreditsSchema]).nullable(),
  })
  .meta({ id: 'DashboardData' });

const EXAMPLE = {
  type: 'org', name: 'acme', org: 'acme', today: '2026-11-29',
  services: [{
    kind: 'geocoding', serviceType: 'geocoder_geonames', provider: 'geonames', quota: 1000, used: 870, remaining: 130, softLimit: false,
    cycleStart: '2026-11-01T00:00:00.000Z', resetsAt: '2026-12-01T00:00:00.000Z',
    daily: [{ date: '2026-11-28', used: 30 }, { date: '2026-11-29', used: 12 }],
    projection: { dailyRate: 30, status: 'runs_out', date: '2026-11-30' },
  }],
  members: [{ username: 'alice', used: { geocoding: 600, isolines: 0, routing: 0 }, share: { geocoding: 0.69, isolines: 0, routing: 0 } }],
  credits: { orgname: 'acme', enabled: true, credits: 500, defaultLimit: -1 },
};

/** The dashboard's paths under `prefix` (where the admin router is mounted). */
export function dashboardPaths(prefix = '/admin'): Record<string, Record<string, unknown>> {
  const tags = ['dashboard'];
  const security = [{ adminToken: [] }];
  const errors = { '401': problemResponse('No bearer token'), '403': problemResponse('Wrong token'), '503': problemResponse('Redis unavailable') };
  return {
    [`${prefix}/dashboard`]: {
      get: { tags, summary: 'The usage dashboard page (login form; the token stays in the tab’s sessionStorage)', responses: { '200': jsonResponse('HTML page', z.string(), undefined, 'text/html') } },
    },
    [`${prefix}/dashboard/data/search`]: {
      get: {
        tags, security, summary: 'Users and orgs whose name contains q (at most 20 of each)',
        requestParams: { query: z.object({ q: z.string().max(128).optional() }) },
        responses: { '200': jsonResponse('Hits', searchSchema, { hits: [{ type: 'user', name: 'alice' }, { type: 'org', name: 'acme' }] }), '400': problemResponse('q is not a valid name'), ...errors },
      },
    },
    [`${prefix}/dashboard/data/view`]: {
      get: {
        tags, security, summary: 'Bars, daily use over the cycle, projections, members and credits of one user or org',
        requestParams: { query: z.object({ user: name.optional(), org: name.optional() }) },
        responses: { '200': jsonResponse('Dashboard data', dashboardDataSchema, EXAMPLE), '400': problemResponse('Neither or both of user and org'), '404': problemResponse('Unknown user or org'), ...errors },
      },
    },
  };
}

// The OpenAPI 3.1 description of the admin API (docs/admin.md), as zod schemas with checked examples.
import { z } from 'zod';
import 'zod-openapi';
import { body, jsonResponse, problemResponse } from '../http/openapi-common.js';
import { TIME_FRAMES, bodies } from './inputs.js';

const name = z.string().min(1).max(128).regex(/^[^:*?[\]{}\s]+$/);
const kind = z.enum(['geocoding', 'isolines', 'routing']).meta({ description: 'Quota kind' });
const credits = z.number().min(-1).meta({ description: 'Credits (at most 3 decimals); -1 means no limit' });

const quotaBlock = z
  .strictObject({
    quota: z.number().int().min(0),
    block_price: z.number().int().nullable(),
    monthly_use: z.number().int().min(0),
    hard_limit: z.boolean().optional(),
  })
  .meta({ id: 'QuotaBlock', description: 'One quota kind as the CARTO dashboard shows it (SPEC 5)' });

const dashboard = {
  geocoding: quotaBlock,
  here_isolines: quotaBlock,
  mapzen_routing: quotaBlock,
  geocoder_provider: z.string(),
  isolines_provider: z.string(),
  routing_provider: z.string(),
  period_end_date: z.string().nullable(),
};

/** A member's credit budget. */
export const userCreditsSchema = z
  .strictObject({
    username: name,
    organization: name,
    enabled: z.boolean(),
    assignedCredits: credits,
    spentCredits: z.number().min(0),
    availableCredits: z.number().min(0),
  })
  .meta({ id: 'UserCredits' });

/** An org's credit settings. */
export const orgCreditsSchema = z
  .strictObject({ orgname: name, enabled: z.boolean(), credits: z.number().min(0), defaultLimit: credits })
  .meta({ id: 'OrgCredits' });

/** `GET /users/:user`. */
export const userViewSchema = z
  .strictObject({
    username: name,
    organization: name.nullable(),
    ...dashboard,
    has_api_key: z.boolean(),
    api_keys: z.array(z.looseObject({ name: z.string(), form: z.string(), masked: z.string().nullable(), state: z.string() })),
    credits: userCreditsSchema.nullable(),
  })
  .meta({ id: 'UserView' });

/** `GET /orgs/:org`. */
export const orgViewSchema = z
  .strictObject({
    orgname: name,
    ...dashboard,
    credits: orgCreditsSchema,
    members: z.array(
      z.strictObject({ username: name, geocoding: z.number().int(), here_isolines: z.number().int(), mapzen_routing: z.number().int() }),
    ),
  })
  .meta({ id: 'OrgView' });

const metrics = z.strictObject({
  success_responses: z.number(),
  empty_responses: z.number(),
  failed_responses: z.number(),
  total_requests: z.number(),
  isolines_generated: z.number(),
});

/** `GET /users/:user/usage`, `GET /orgs/:org/usage`: one summary per quota kind. */
export const usageSchema = z
  .array(
    z.strictObject({
      owner: z.strictObject({ type: z.enum(['user', 'org']), name }),
      kind,
      serviceType: z.string(),
      cycleStart: z.iso.datetime(),
      resetsAt: z.iso.datetime(),
      metrics,
      used: z.number().int(),
    }),
  )
  .meta({ id: 'UsageSummaries' });

/** One row of `GET /reports`. */
export const reportRowSchema = z
  .looseObject({
    date: z.string().meta({ description: 'YYYY-MM-DD (UTC); total rows carry their own label (docs/reports.md)' }),
    scope: z.enum(['user', 'org']),
    owner: name,
    serviceType: z.string(),
    metric: z.string(),
    count: z.number(),
    credits: z.number(),
  })
  .meta({ id: 'ReportRow' });

const ok = z.strictObject({ ok: z.literal(true), warnings: z.array(z.string()).optional().meta({ description: 'Org rules this change breaks (docs/key-layout.md); the change was made' }) });
const userPath = z.object({ user: name });
const orgPath = z.object({ org: name });
const bothPaths = { users: userPath, orgs: orgPath } as const;

const BLOCK = { quota: 1000, block_price: 150, monthly_use: 743, hard_limit: true };
const createdKey = z.strictObject({ username: name, name: z.string(), apiKey: z.string().startsWith('tg_') });
const CREATED_KEY = { username: 'alice', name: 'ci', apiKey: 'tg_3q2-7wE1example' };
const revoked = z.strictObject({ name: z.string(), revoked: z.boolean() });
const ORG_CREDITS = { orgname: 'acme', enabled: true, credits: 500, defaultLimit: 20 };
const USER_CREDITS = { username: 'alice', organization: 'acme', enabled: true, assignedCredits: 20, spentCredits: 1.2, availableCredits: 18.8 };

const errors = {
  '400': problemResponse('Bad input (ERR_TOLLGATE_INVALID_*); nothing changed'),
  '401': problemResponse('No bearer token', { type: 'urn:tollgate:problem:admin-unauthorized', title: 'Unauthorized', status: 401, detail: 'missing bearer token', code: 'ERR_TOLLGATE_UNAUTHORIZED' }),
  '403': problemResponse('Wrong token'),
  '404': problemResponse('Unknown user or org'),
  '503': problemResponse('Redis unavailable'),
};
const changeErrors = { ...errors, '409': problemResponse('Conflict: exists, not in an org, or changed meanwhile'), '422': problemResponse('Garbled config in Redis') };

/**
 * The admin API's paths, mounted under `prefix` (where the host app mounts the router).
 * Every route of `createAdminRouter` is here; a test compares the two.
 */
export function adminPaths(prefix = '/admin'): Record<string, Record<string, unknown>> {
  const tags = ['admin'];
  const security = [{ adminToken: [] }];
  const op = (summary: string, extra: Record<string, unknown>) => ({ tags, security, summary, ...extra });
  const paths: Record<string, Record<string, unknown>> = {
    '/users/{user}/api-keys': {
      get: op('The user’s keys, masked (never a key or a digest)', {
        requestParams: { path: userPath },
        responses: { '200': jsonResponse('Keys', z.array(z.looseObject({ name: z.string(), form: z.string(), state: z.string() })), [{ name: 'main', form: 'sha256', masked: null, created_at: null, expires_at: null, state: 'active' }]), ...errors },
      }),
      post: op('Create an API key (shown once); other keys keep working', {
        requestParams: { path: userPath },
        requestBody: body(bodies.createKey, { name: 'ci' }),
        responses: { '201': jsonResponse('The key', createdKey, CREATED_KEY), ...changeErrors },
      }),
    },
    '/users/{user}/api-keys/{name}': {
      delete: op('Revoke one key (`map_key` and `default` name the CARTO and unnamed forms)', {
        requestParams: { path: z.object({ user: name, name: z.string() }) },
        responses: { '200': jsonResponse('Whether there was one', revoked, { name: 'ci', revoked: true }), ...changeErrors },
      }),
    },
    '/users/{user}/api-keys/{name}/rotate': {
      post: op('Replace a key; the old one works until previousExpiresAt', {
        requestParams: { path: z.object({ user: name, name: z.string() }) },
        requestBody: body(bodies.rotateKey, { overlapSeconds: 3600 }),
        responses: { '201': jsonResponse('The new key', createdKey.extend({ previous: z.string(), previousExpiresAt: z.string() }).loose(), { ...CREATED_KEY, previous: 'ci', previousExpiresAt: '2026-11-30T12:00:00.000Z' }), ...changeErrors },
      }),
    },
    '/users/{user}/usage-adjustments': {
      get: op('The newest 20 audited usage adjustments', { requestParams: { path: userPath }, responses: { '200': jsonResponse('Adjustments', z.array(z.looseObject({})), []), ...errors } }),
      post: op('Credit units back today on the user’s and its pool’s charged metric (audited)', {
        requestParams: { path: userPath },
        requestBody: body(bodies.adjustUsage, { kind: 'geocoding', units: 10, reason: 'outage on 2026-11-28' }),
        responses: { '201': jsonResponse('The adjustment', z.looseObject({})), ...changeErrors },
      }),
    },
    '/users/{user}': {
      get: op('A user as the CARTO user endpoint shows it', {
        requestParams: { path: userPath },
        responses: {
          '200': jsonResponse('The user', userViewSchema, {
            username: 'alice', organization: 'acme', geocoding: BLOCK, here_isolines: { ...BLOCK, quota: 500, monthly_use: 3 },
            mapzen_routing: { quota: 0, block_price: null, monthly_use: 0, hard_limit: true }, geocoder_provider: 'geonames',
            isolines_provider: 'straightline', routing_provider: 'mapzen', period_end_date: '2016-01-01 00:00:00 UTC', has_api_key: true,
            api_keys: [{ name: 'main', form: 'sha256', masked: null, created_at: null, expires_at: null, state: 'active' }], credits: USER_CREDITS,
          }),
          ...errors,
        },
      }),
    },
    '/orgs/{org}': {
      get: op('An org, its pooled usage, credits and each member’s use', {
        requestParams: { path: orgPath },
        responses: {
          '200': jsonResponse('The org', orgViewSchema, {
            orgname: 'acme', geocoding: { quota: 1000, block_price: 150, monthly_use: 743 }, here_isolines: { quota: 500, block_price: null, monthly_use: 3 },
            mapzen_routing: { quota: 0, block_price: null, monthly_use: 0 }, geocoder_provider: 'geonames', isolines_provider: 'straightline',
            routing_provider: 'mapzen', period_end_date: null, credits: ORG_CREDITS, members: [{ username: 'alice', geocoding: 743, here_isolines: 3, mapzen_routing: 0 }],
          }),
          ...errors,
        },
      }),
    },
    '/users/{user}/usage': { get: op('Current-cycle counters per kind of a user', { requestParams: { path: userPath }, responses: { '200': jsonResponse('One summary per kind', usageSchema), ...errors } }) },
    '/orgs/{org}/usage': { get: op('Current-cycle counters per kind of an org pool', { requestParams: { path: orgPath }, responses: { '200': jsonResponse('One summary per kind', usageSchema), ...errors } }) },
    '/users/{user}/soft-limit/{kind}': {
      put: op('Turn a user’s soft limit on or off', {
        requestParams: { path: z.object({ user: name, kind }) },
        requestBody: body(bodies.enabled, { enabled: true }),
        responses: { '200': jsonResponse('Done', ok, { ok: true }), ...changeErrors },
      }),
    },
    '/users/{user}/organization': {
      put: op('Put a user in an org, or take it out with null (cluster key layout: moves its fields between slots; sending it again finishes a move that stopped half-way)', {
        requestParams: { path: userPath },
        requestBody: body(bodies.organization, { org: 'acme' }),
        responses: { '200': jsonResponse('Done', ok, { ok: true }), ...changeErrors },
      }),
    },
    '/users/{user}/api-key': {
      post: op('Create a new API key (shown once; only its SHA-256 is stored); same as POST /api-keys', {
        requestParams: { path: userPath },
        requestBody: body(bodies.createKey, { name: 'ci' }),
        responses: { '201': jsonResponse('The key', createdKey, CREATED_KEY), ...changeErrors },
      }),
      delete: op('Revoke the user’s only key (400 when it has several)', {
        requestParams: { path: userPath },
        responses: { '200': jsonResponse('Whether there was one', revoked, { name: 'main', revoked: true }), ...changeErrors },
      }),
    },
    '/orgs/{org}/credits': {
      get: op('An org’s credits', { requestParams: { path: orgPath }, responses: { '200': jsonResponse('Credits', orgCreditsSchema, ORG_CREDITS), ...errors } }),
      put: op('Set an org’s balance', {
        requestParams: { path: orgPath },
        requestBody: body(bodies.credits, { credits: 500 }),
        responses: { '200': jsonResponse('Credits', orgCreditsSchema, ORG_CREDITS), ...changeErrors },
      }),
    },
    '/orgs/{org}/credits/add': {
      post: op('Add to an org’s balance atomically', {
        requestParams: { path: orgPath },
        requestBody: body(bodies.credits, { credits: 25.5 }),
        responses: { '200': jsonResponse('Credits', orgCreditsSchema, ORG_CREDITS), ...changeErrors },
      }),
    },
    '/orgs/{org}/credits/enabled': {
      put: op('Turn budgeting on or off', {
        requestParams: { path: orgPath },
        requestBody: body(bodies.enabled, { enabled: true }),
        responses: { '200': jsonResponse('Credits', orgCreditsSchema, ORG_CREDITS), ...changeErrors },
      }),
    },
    '/orgs/{org}/credits/default-limit': {
      put: op('Set (or clear with {}) the allocation new members get', {
        requestParams: { path: orgPath },
        requestBody: body(bodies.optionalCredits, { credits: 10 }),
        responses: { '200': jsonResponse('Credits', orgCreditsSchema, ORG_CREDITS), ...changeErrors },
      }),
    },
    '/users/{user}/credits': { get: op('A member’s assigned, spent and available credits', { requestParams: { path: userPath }, responses: { '200': jsonResponse('Credits', userCreditsSchema, USER_CREDITS), ...changeErrors } }) },
    '/users/{user}/credits/allocation': {
      put: op('Allocate credits to a member ({} for no limit)', {
        requestParams: { path: userPath },
        requestBody: body(bodies.optionalCredits, { credits: 20 }),
        responses: { '200': jsonResponse('Credits', userCreditsSchema, USER_CREDITS), ...changeErrors },
      }),
      delete: op('Back to no limit', { requestParams: { path: userPath }, responses: { '200': jsonResponse('Credits', userCreditsSchema, { ...USER_CREDITS, assignedCredits: -1, spentCredits: 0, availableCredits: 500 }), ...changeErrors } }),
    },
    '/reports': {
      get: op('Usage rows by user and day, streamed (JSON array or CSV)', {
        requestParams: {
          query: z.object({
            user: name.optional(),
            org: name.optional(),
            frame: z.string().optional().meta({ description: `One of ${Object.keys(TIME_FRAMES).join(', ')} (docs/reports.md); default 30days` }),
            from: z.string().optional().meta({ description: 'YYYY-MM-DD or an ISO timestamp in UTC' }),
            month: z.string().optional().meta({ description: 'YYYY-MM: a calendar month instead of a frame' }),
            unsorted: z.enum(['true']).optional(),
            no_totals: z.enum(['true']).optional(),
            format: z.enum(['json', 'csv']).optional(),
          }),
        },
        responses: {
          '200': {
            description: 'Rows; X-Report-From and X-Report-To give the days covered',
            content: {
              'application/json': { schema: z.array(reportRowSchema), example: [{ date: '2026-11-28', scope: 'user', owner: 'alice', serviceType: 'geocoder_geonames', metric: 'success_responses', count: 12, credits: 0.48 }] },
              'text/csv': { schema: z.string(), example: 'date,scope,owner,service_type,metric,count,credits\n2026-11-28,user,alice,geocoder_geonames,success_responses,12,0.48\n' },
            },
          },
          ...errors,
        },
      }),
    },
  };
  for (const owner of ['users', 'orgs'] as const) {
    const path = bothPaths[owner];
    const param = owner === 'users' ? '{user}' : '{org}';
    paths[`/${owner}`] = {
      post: op(`Create ${owner === 'users' ? 'a user (every quota 0)' : 'an org (budgeting off)'}`, {
        requestBody: body(bodies.create, { name: owner === 'users' ? 'alice' : 'acme' }),
        responses: { '201': jsonResponse('Created', z.strictObject({ created: z.string() }), { created: owner === 'users' ? 'user:alice' : 'org:acme' }), ...changeErrors },
      }),
    };
    paths[`/${owner}/${param}/quota/{kind}`] = {
      put: op('Set the quota of one kind', {
        requestParams: { path: path.extend({ kind }) },
        requestBody: body(bodies.quota, { quota: 1000 }),
        responses: { '200': jsonResponse('Done', ok, { ok: true }), ...changeErrors },
      }),
    };
    paths[`/${owner}/${param}/provider/{kind}`] = {
      put: op('Set the provider of one kind', {
        requestParams: { path: path.extend({ kind }) },
        requestBody: body(bodies.provider, { provider: 'mapbox' }),
        responses: { '200': jsonResponse('Done', ok, { ok: true }), ...changeErrors },
      }),
    };
    paths[`/${owner}/${param}/period-end-date`] = {
      put: op('Set period_end_date (its day of month anchors the billing cycle)', {
        requestParams: { path },
        requestBody: body(bodies.date, { date: '2016-10-10' }),
        responses: { '200': jsonResponse('Stored as', z.strictObject({ period_end_date: z.string(), warnings: z.array(z.string()).optional() }), { period_end_date: '2016-10-10 00:00:00 UTC' }), ...changeErrors },
      }),
    };
    paths[`/${owner}`]!.get = op(`One SCAN page of ${owner} names`, {
      requestParams: { query: z.object({ cursor: z.string().optional().meta({ description: 'Start with 0; stop when it comes back 0' }), count: z.string().optional() }) },
      responses: { '200': jsonResponse('Names and the next cursor', z.strictObject({ names: z.array(name), cursor: z.string() }), { names: [owner === 'users' ? 'alice' : 'acme'], cursor: '0' }), ...errors },
    });
    paths[`/${owner}/${param}`] = {
      ...paths[`/${owner}/${param}`],
      delete: op(`Delete ${owner === 'users' ? 'a user' : 'an org'} (with_usage=true also deletes its usage keys)`, {
        requestParams: { path, query: z.object({ with_usage: z.enum(['true']).optional() }) },
        responses: { '200': jsonResponse('Deleted', z.looseObject({ deleted: z.string() }), { deleted: owner === 'users' ? 'user:alice' : 'org:acme', usageKeys: 0, months: [] }), ...changeErrors },
      }),
    };
    paths[`/${owner}/${param}/block-price/{kind}`] = {
      put: op('Set the price of a block of 1000 units past the quota, in cents', {
        requestParams: { path: path.extend({ kind }) },
        requestBody: body(bodies.blockPrice, { block_price: 1500 }),
        responses: { '200': jsonResponse('Done', ok, { ok: true }), ...changeErrors },
      }),
      delete: op('No block price', { requestParams: { path: path.extend({ kind }) }, responses: { '200': jsonResponse('Done', ok, { ok: true }), ...changeErrors } }),
    };
  }
  return Object.fromEntries(Object.entries(paths).map(([path, item]) => [`${prefix}${path}`, item]));
}

/** The bearer-token security scheme the admin paths name. */
export const ADMIN_SECURITY_SCHEMES = {
  adminToken: { type: 'http', scheme: 'bearer', description: 'TOLLGATE_ADMIN_TOKEN (at least 16 characters)' },
} as const;

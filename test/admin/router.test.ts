// The admin API over real HTTP against a real Redis: bearer auth, every endpoint, typed errors, audit log without secrets.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createHash } from 'node:crypto';
import express from 'express';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createAdminRouter, type AdminChange } from '../../src/admin/router.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';

const redis = useTestRedis();
const TOKEN = 'test-admin-token-0123456789';
const changes: AdminChange[] = [];
let server: Server;
let base: string;
let tollgate: Tollgate;

beforeAll(async () => {
  tollgate = new Tollgate({ redis: redis.client() });
  const app = express();
  app.use('/admin', createAdminRouter({ tollgate, token: TOKEN, log: (change) => changes.push(change) }));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
const fresh = useNames(redis.client);

async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: response.status, json, text, headers: response.headers };
}

describe('admin authentication', () => {
  it('answers 401 without a token and 403 with a wrong one, on reads and writes, changing nothing', async () => {
    const user = fresh('auth-u');
    await writeUser(redis.client(), user, { geocoding_quota: '5' });
    const before = await snapshot(redis.client(), [user]);
    for (const [method, path, body] of [
      ['GET', `/users/${user}`, undefined],
      ['PUT', `/users/${user}/quota/geocoding`, { quota: 9 }],
      ['POST', `/users/${user}/api-key`, undefined],
    ] as const) {
      const missing = await call(method, path, body, null);
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await call(method, path, body, 'wrong-token-0123456789')).status).toBe(403);
      expect((await call(method, path, body, `${TOKEN}x`)).status).toBe(403);
      expect((await call(method, path, body, TOKEN.slice(0, -1))).status).toBe(403);
    }
    const basic = await fetch(`${base}/users/${user}`, { headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(401);
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });

  it('refuses a short token at construction', () => {
    expect(() => createAdminRouter({ tollgate, token: 'short' })).toThrow(/at least 16/);
  });
});

describe('admin endpoints', () => {
  it('creates and configures users and orgs, and shows them', async () => {
    const user = fresh('api-u');
    const org = fresh('api-o');
    expect((await call('POST', '/users', { name: user })).status).toBe(201);
    expect((await call('POST', '/orgs', { name: org })).status).toBe(201);
    expect((await call('POST', '/orgs', { name: org })).json.code).toBe('ERR_TOLLGATE_ALREADY_EXISTS');
    expect((await call('PUT', `/orgs/${org}/quota/geocoding`, { quota: 500 })).status).toBe(200);
    expect((await call('PUT', `/users/${user}/quota/routing`, { quota: '20' })).status).toBe(200);
    expect((await call('PUT', `/users/${user}/soft-limit/geocoding`, { enabled: true })).status).toBe(200);
    expect((await call('PUT', `/orgs/${org}/provider/geocoding`, { provider: 'tomtom' })).status).toBe(200);
    expect((await call('PUT', `/users/${user}/provider/isolines`, { provider: 'mapbox' })).status).toBe(200);
    expect((await call('PUT', `/orgs/${org}/period-end-date`, { date: '2017-01-31' })).json).toEqual({
      period_end_date: '2017-01-31 00:00:00 UTC',
    });
    expect((await call('PUT', `/users/${user}/period-end-date`, { date: '2017-02-21' })).status).toBe(200);
    expect((await call('PUT', `/users/${user}/organization`, { org })).status).toBe(200);
    await tollgate.consume({ user, kind: 'geocoding', cost: 4 });

    const shown = await call('GET', `/users/${user}`);
    expect(shown.json).toMatchObject({
      username: user,
      organization: org,
      geocoding: { quota: 500, monthly_use: 4, hard_limit: false },
      mapzen_routing: { quota: 20, hard_limit: true },
      geocoder_provider: 'tomtom',
      isolines_provider: 'mapbox',
      period_end_date: '2017-01-31 00:00:00 UTC',
    });
    const orgView = await call('GET', `/orgs/${org}`);
    expect(orgView.json).toMatchObject({ orgname: org, geocoding: { quota: 500, monthly_use: 4 }, members: [{ username: user, geocoding: 4 }] });
    expect((await call('GET', `/users/${user}/usage`)).json[0]).toMatchObject({ kind: 'geocoding', used: 4 });
    expect((await call('GET', `/orgs/${org}/usage`)).json[0]).toMatchObject({ kind: 'geocoding', used: 4 });
    expect((await call('PUT', `/users/${user}/organization`, { org: null })).status).toBe(200);
    expect(await redis.client().hget(`rails:users:${user}`, 'organization')).toBeNull();
  });

  it('creates an API key once, logs the change without the key or its digest, and revokes it', async () => {
    const user = fresh('api-k');
    await writeUser(redis.client(), user, { geocoding_quota: '5' });
    changes.length = 0;
    const created = await call('POST', `/users/${user}/api-key`);
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const apiKey: string = created.json.apiKey;
    const digest = createHash('sha256').update(apiKey).digest('hex');
    expect(created.json.name).toBe('main');
    expect(await redis.client().hget(`rails:users:${user}`, 'api_key_sha256:main')).toBe(digest);
    expect((await call('DELETE', `/users/${user}/api-key`)).json).toEqual({ name: 'main', revoked: true });
    expect(await redis.client().hget(`rails:users:${user}`, 'api_key_sha256:main')).toBeNull();
    const logged = JSON.stringify(changes);
    expect(changes.map((c) => c.action)).toEqual(['create-api-key', 'revoke-api-key']);
    expect(logged).not.toContain(apiKey);
    expect(logged).not.toContain(digest);
    expect(logged).not.toContain(TOKEN);
  });

  it('runs the credit budget: balance, enable, default limit, allocate, deallocate, -1', async () => {
    const org = fresh('api-co');
    const user = fresh('api-cu');
    await writeOrg(redis.client(), org, { geocoding_quota: '1000' });
    await writeUser(redis.client(), user, { organization: org });
    changes.length = 0;
    expect((await call('PUT', `/orgs/${org}/credits`, { credits: 5 })).json).toMatchObject({ credits: 5, enabled: false, defaultLimit: -1 });
    expect((await call('POST', `/orgs/${org}/credits/add`, { credits: '1.25' })).json).toMatchObject({ credits: 6.25 });
    expect((await call('PUT', `/orgs/${org}/credits/enabled`, { enabled: true })).json).toMatchObject({ enabled: true });
    expect((await call('PUT', `/orgs/${org}/credits/default-limit`, { credits: 2 })).json).toMatchObject({ defaultLimit: 2 });
    expect((await call('GET', `/orgs/${org}/credits`)).json).toEqual({ orgname: org, enabled: true, credits: 6.25, defaultLimit: 2 });
    expect((await call('GET', `/users/${user}/credits`)).json).toMatchObject({ assignedCredits: -1, availableCredits: 6.25 });
    expect((await call('PUT', `/users/${user}/credits/allocation`, { credits: 0.1 })).json).toMatchObject({
      assignedCredits: 0.1,
      availableCredits: 0.1,
    });
    const denied = await tollgate.consume({ user, kind: 'geocoding', cost: 3 }); // 0.12 credits
    expect(denied.reason).toBe('credits_exhausted');
    expect((await tollgate.consume({ user, kind: 'geocoding', cost: 2 })).allowed).toBe(true);
    expect((await call('GET', `/users/${user}/credits`)).json).toMatchObject({ spentCredits: 0.08, availableCredits: 0.02 });
    expect((await call('DELETE', `/users/${user}/credits/allocation`)).json).toMatchObject({ assignedCredits: -1, availableCredits: 6.17 });
    expect((await call('PUT', `/users/${user}/credits/allocation`, {})).json).toMatchObject({ assignedCredits: -1 });
    expect((await call('PUT', `/orgs/${org}/credits/enabled`, { enabled: false })).json).toMatchObject({ defaultLimit: -1 });
    expect(changes.map((c) => c.action)).toEqual([
      'set-credits',
      'add-credits',
      'enable-credits',
      'set-default-limit',
      'allocate',
      'deallocate',
      'allocate',
      'disable-credits',
    ]);
    expect(changes.every((c) => c.target.length > 0 && !Number.isNaN(Date.parse(c.at)))).toBe(true);
  });

  it('streams reports as JSON and as CSV that parses back to the same rows', async () => {
    const user = fresh('api-r');
    await writeUser(redis.client(), user, { geocoding_quota: '5' });
    await redis.client().zadd(`user:${user}:geocoder_here:success_responses:202601`, 3, '30', 2, '31');
    await redis.client().zadd(`user:${user}:geocoder_here:success_responses:202602`, 7, '01');
    const json = await call('GET', `/reports?user=${user}&frame=week&from=2026-01-29`);
    expect(json.status).toBe(200);
    expect(json.headers.get('x-report-from')).toBe('2026-01-29');
    expect(json.headers.get('x-report-to')).toBe('2026-02-04');
    // Sorted by owner and date, then the counted units per day ('used'), then the totals.
    expect(json.json.map((r: any) => [r.date, r.metric, r.count])).toEqual([
      ['2026-01-30', 'success_responses', 3],
      ['2026-01-30', 'used', 3],
      ['2026-01-31', 'success_responses', 2],
      ['2026-01-31', 'used', 2],
      ['2026-02-01', 'success_responses', 7],
      ['2026-02-01', 'used', 7],
      ['total', 'success_responses', 12],
      ['total', 'used', 12],
    ]);
    const csv = await call('GET', `/reports?user=${user}&frame=week&from=2026-01-29&format=csv`);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const records = parse(csv.text, { columns: true }) as Array<Record<string, string>>;
    expect(records).toEqual(
      json.json.map((r: any) => ({
        date: r.date,
        scope: r.scope,
        owner: r.owner,
        service_type: r.serviceType,
        metric: r.metric,
        count: String(r.count),
        credits: String(r.credits),
      })),
    );
  });

  it('answers typed errors with 4xx and changes nothing', async () => {
    const user = fresh('api-bad');
    const org = fresh('api-bad-o');
    await writeUser(redis.client(), user, { geocoding_quota: '5' });
    await writeOrg(redis.client(), org, { geocoding_quota: '5' });
    const before = await snapshot(redis.client(), [user, org]);
    const cases: Array<[string, string, unknown, number, string]> = [
      ['PUT', `/users/${user}/quota/geocoding`, { quota: -1 }, 400, 'ERR_TOLLGATE_INVALID_QUOTA'],
      ['PUT', `/users/${user}/quota/geocoding`, { quota: 2.5 }, 400, 'ERR_TOLLGATE_INVALID_QUOTA'],
      ['PUT', `/users/${user}/quota/teleport`, { quota: 1 }, 400, 'ERR_TOLLGATE_UNKNOWN_QUOTA_KIND'],
      ['PUT', `/users/nobody-${user}/quota/geocoding`, { quota: 1 }, 404, 'ERR_TOLLGATE_UNKNOWN_USER'],
      ['GET', `/orgs/nobody-${org}`, undefined, 404, 'ERR_TOLLGATE_UNKNOWN_ORG'],
      ['PUT', `/orgs/${org}/credits`, { credits: -5 }, 400, 'ERR_TOLLGATE_INVALID_CREDITS'],
      ['PUT', `/users/${user}/credits/allocation`, { credits: 5 }, 409, 'ERR_TOLLGATE_NOT_IN_ORG'],
      ['PUT', `/users/${user}/period-end-date`, { date: '2017-02-29' }, 400, 'ERR_TOLLGATE_INVALID_DATE'],
      ['PUT', `/users/${user}/soft-limit/geocoding`, { enabled: 'maybe' }, 400, 'ERR_TOLLGATE_INVALID_ARGUMENT'],
      ['PUT', `/users/${user}/organization`, { org: `nobody-${org}` }, 404, 'ERR_TOLLGATE_UNKNOWN_ORG'],
      ['POST', '/users', { name: 'a:b' }, 400, 'ERR_TOLLGATE_INVALID_NAME'],
      ['GET', `/users/${encodeURIComponent('a b')}`, undefined, 400, 'ERR_TOLLGATE_INVALID_NAME'],
      ['GET', `/reports?user=${user}&frame=fortnight`, undefined, 400, 'ERR_TOLLGATE_INVALID_TIME_FRAME'],
      ['GET', `/reports?user=${user}&from=yesterday`, undefined, 400, 'ERR_TOLLGATE_INVALID_DATE'],
      ['GET', `/reports?user=nobody-${user}`, undefined, 404, 'ERR_TOLLGATE_UNKNOWN_USER'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const response = await call(method, path, body);
      expect([path, response.status, response.json?.code]).toEqual([path, status, code]);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    const malformed = await fetch(`${base}/users/${user}/quota/geocoding`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"quota":',
    });
    expect(malformed.status).toBe(400);
    expect(await snapshot(redis.client(), [user, org])).toEqual(before);
  });
});

// Issue 11 items 3, 4, 8 and 9 through the admin API: problem+json 404, kind names, body wording, 503, warnings, new routes.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { createAdminRouter } from '../../src/admin/router.js';
import { quotaGuard } from '../../src/http/index.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { serveForFile } from '../http/support.js';

const redis = useTestRedis();
const fresh = useNames(redis.client);
const servers = serveForFile();
const TOKEN = 'router-gaps-token-0123456789';
let base: string;
let tollgate: Tollgate;

beforeAll(async () => {
  tollgate = new Tollgate({ redis: redis.client() });
  const app = express();
  app.use('/admin', createAdminRouter({ tollgate, token: TOKEN, log: () => undefined }));
  base = `${(await servers.start(app)).url}/admin`;
});

async function call(method: string, path: string, body?: unknown, root = base): Promise<{ status: number; json: any; headers: Headers; text: string }> {
  const response = await fetch(`${root}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: response.status, json, headers: response.headers, text };
}

describe('admin API consistency (item 9)', () => {
  it('an unknown route is a problem+json 404, not an HTML page', async () => {
    for (const [method, path] of [['GET', '/nothing'], ['POST', '/users/x/teleport'], ['DELETE', '/reports']] as const) {
      const reply = await call(method, path);
      expect(reply.status).toBe(404);
      expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(reply.json).toMatchObject({ status: 404, code: 'ERR_TOLLGATE_NOT_FOUND' });
      expect(reply.text).not.toMatch(/<html|<pre>/i);
    }
  });

  it('a kind GET shows (here_isolines, mapzen_routing) can be PUT back', async () => {
    const user = fresh('kind-u');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    const shown = await call('GET', `/users/${user}`);
    expect(Object.keys(shown.json)).toEqual(expect.arrayContaining(['here_isolines', 'mapzen_routing']));
    expect((await call('PUT', `/users/${user}/quota/here_isolines`, { quota: 30 })).status).toBe(200);
    expect((await call('PUT', `/users/${user}/quota/mapzen_routing`, { quota: 40 })).status).toBe(200);
    expect((await call('GET', `/users/${user}`)).json).toMatchObject({ here_isolines: { quota: 30 }, mapzen_routing: { quota: 40 } });
  });

  it('bodies speak JSON, not CLI words; unknown fields are refused; nothing changes', async () => {
    const user = fresh('body-u');
    await writeUser(redis.client(), user, { geocoding_quota: '1' });
    const before = await snapshot(redis.client(), [user]);
    const yes = await call('PUT', `/users/${user}/soft-limit/geocoding`, { enabled: 'yes' });
    expect(yes.json).toMatchObject({ status: 400, code: 'ERR_TOLLGATE_INVALID_ARGUMENT' });
    expect(yes.json.detail).toMatch(/enabled must be a JSON boolean, true or false/);
    expect(yes.json.detail).not.toMatch(/on or off/);
    const typo = await call('PUT', `/users/${user}/quota/geocoding`, { qouta: 5 });
    expect(typo.json.code).toBe('ERR_TOLLGATE_INVALID_ARGUMENT');
    expect(typo.json.detail).toMatch(/unknown field qouta/);
    // The same date parser as the CLI: an ISO timestamp is accepted here too.
    expect((await call('PUT', `/users/${user}/period-end-date`, { date: '2016-10-10T00:00:00Z' })).json).toEqual({
      period_end_date: '2016-10-10 00:00:00 UTC',
    });
    await redis.client().hdel(`rails:users:${user}`, 'period_end_date');
    expect(await snapshot(redis.client(), [user])).toEqual(before);
  });

  it('503 when Redis is down: Retry-After, and no ioredis wording', async () => {
    const down = new Tollgate({ redis: 'redis://127.0.0.1:1', timeoutMs: 300 });
    const app = express();
    app.use('/admin', createAdminRouter({ tollgate: down, token: TOKEN, log: () => undefined }));
    const root = `${(await servers.start(app)).url}/admin`;
    try {
      const reply = await call('GET', '/users/someone', undefined, root);
      expect(reply.status).toBe(503);
      expect(reply.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(reply.json.code).toBe('ERR_TOLLGATE_REDIS_UNAVAILABLE');
      expect(reply.text).not.toMatch(/maxRetriesPerRequest|ECONNREFUSED|Reached the max/);
    } finally {
      await down.close();
    }
  });
});

describe('warnings and new routes (items 3, 4)', () => {
  it('answers warnings: [...] when CARTO rules make a change do less than it seems', async () => {
    const org = fresh('wa-o');
    const user = fresh('wa-u');
    await writeOrg(redis.client(), org, { geocoding_quota: '10' });
    await writeUser(redis.client(), user, { organization: org });
    const reply = await call('PUT', `/users/${user}/quota/geocoding`, { quota: 99 });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ ok: true, warnings: [expect.stringContaining('has no effect')] });
    expect((await call('PUT', `/users/${user}/quota/routing`, { quota: 1 })).json).toEqual({ ok: true });
  });

  it('lists, deletes, sets block prices and adjusts usage', async () => {
    const user = fresh('nr-u');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    let cursor = '0';
    const names: string[] = [];
    do {
      const page = await call('GET', `/users?cursor=${cursor}&count=50`);
      names.push(...page.json.names);
      cursor = page.json.cursor;
    } while (cursor !== '0');
    expect(names).toContain(user);
    expect((await call('PUT', `/users/${user}/block-price/geocoding`, { block_price: 150 })).status).toBe(200);
    expect((await call('GET', `/users/${user}`)).json.geocoding.block_price).toBe(150);
    await tollgate.consume({ user, kind: 'geocoding', cost: 3 });
    const adjusted = await call('POST', `/users/${user}/usage-adjustments`, { kind: 'geocoding', units: 2, reason: 'test' });
    expect(adjusted.status).toBe(201);
    expect((await call('GET', `/users/${user}/usage-adjustments`)).json).toEqual([expect.objectContaining({ units: 2, actor: 'admin-api' })]);
    expect((await tollgate.quota({ user: user, kind: 'geocoding' })).used).toBe(1);
    expect((await call('DELETE', `/users/${user}`)).json.code).toBe('ERR_TOLLGATE_HAS_USAGE');
    expect((await call('DELETE', `/users/${user}?with_usage=true`)).json).toMatchObject({ deleted: `user:${user}` });
    expect((await call('GET', `/users/${user}`)).status).toBe(404);
  });
});

describe('a refunded 502 (item 9; the fix is in the guard, main 4f95baa)', () => {
  it('carries the post-refund RateLimit remaining', async () => {
    const user = fresh('rf-u');
    const key = `key-${user}`;
    await writeUser(redis.client(), user, { geocoding_quota: '10', map_key: key });
    const app = express();
    app.get('/u/:username/api/v1/thing', quotaGuard({ tollgate, kind: 'geocoding', logger: SILENT_LOGGER }), (_req, res) => {
      res.status(502).json({ error: 'upstream failed' });
    });
    const url = (await servers.start(app)).url;
    const reply = await fetch(`${url}/u/${user}/api/v1/thing?api_key=${key}`);
    expect(reply.status).toBe(502);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await tollgate.quota({ user: user, kind: 'geocoding' })).used).toBe(0); // the refund itself works
    expect(/r=(\d+)/.exec(reply.headers.get('ratelimit') ?? '')?.[1]).toBe('10');
  });
});

// The admin API on a real Redis Cluster with the cluster key layout: users, orgs, moves, keys, reports and the dashboard's data, checked by key name through a Cluster client.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminRouter } from '../../src/admin/router.js';
import { startDemo } from '../../demo/src/service.js';
import { redisTargetFromEnv } from '../../src/core/redis-target.js';
import { useClusterTollgate } from '../helpers/redis-cluster.js';
import { uniqueName } from '../helpers/fixtures.js';

const gate = useClusterTollgate({ configCacheMs: 0 });
const TOKEN = 'test-admin-token-0123456789';
let server: Server;
let base: string;

beforeAll(async () => {
  const app = express();
  app.use('/admin', createAdminRouter({ tollgate: gate.tollgate, token: TOKEN }));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin`;
});
// useClusterTollgate closes the Tollgate and its client after the file.
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, json: text === '' ? null : JSON.parse(text) };
}

function month(): string {
  const now = new Date();
  return `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

describe('the admin API with the cluster layout', () => {
  it('creates, moves, shows, reports and deletes through the documented keys', async () => {
    const user = uniqueName('u');
    const org = uniqueName('o');
    expect((await call('POST', '/users', { name: user })).status).toBe(201);
    expect((await call('POST', '/orgs', { name: org })).status).toBe(201);
    expect((await call('PUT', `/orgs/${org}/quota/geocoding`, { quota: 40 })).status).toBe(200);
    expect((await call('PUT', `/users/${user}/quota/geocoding`, { quota: 9 })).status).toBe(200);
    expect(await gate.client.hget(`rails:users:{user:${user}}`, 'geocoding_quota')).toBe('9');

    expect((await call('PUT', `/users/${user}/organization`, { org })).status).toBe(200);
    expect(await gate.client.hgetall(`rails:users:{user:${user}}`)).toEqual({ organization: org });
    expect(await gate.client.hget(`rails:orgs:{org:${org}}:member:${user}`, 'geocoding_quota')).toBe('9');
    const key = await call('POST', `/users/${user}/api-keys`, { name: 'web' });
    expect(key.status).toBe(201);
    expect(await gate.client.hget(`rails:orgs:{org:${org}}:member:${user}`, 'api_key_sha256:web')).toMatch(/^[0-9a-f]{64}$/);

    expect((await gate.tollgate.consume({ user, kind: 'geocoding', cost: 4, apiKey: key.json.apiKey })).allowed).toBe(true);
    const shown = await call('GET', `/users/${user}`);
    expect(shown.json).toMatchObject({ organization: org, geocoding: { quota: 40, monthly_use: 4 }, has_api_key: true });
    expect((await call('GET', `/orgs/${org}`)).json.members).toEqual([{ username: user, geocoding: 4, here_isolines: 0, mapzen_routing: 0 }]);
    const report = await call('GET', `/reports?org=${org}&frame=today&no_totals=true`);
    expect(report.json.filter((row: { metric: string }) => row.metric === 'success_responses').map((row: { scope: string; count: number }) => [row.scope, row.count])).toEqual([
      ['org', 4],
      ['user', 4],
    ]);
    const dashboard = await call('GET', `/dashboard/data/view?user=${user}`);
    expect(dashboard.status).toBe(200);
    expect(dashboard.json.services[0]).toMatchObject({ kind: 'geocoding', used: 4, quota: 40 });
    expect(dashboard.json.services[0].daily.at(-1).used).toBe(4);
    expect(dashboard.json.members.map((member: { username: string }) => member.username)).toEqual([user]);
    const hits = await call('GET', `/dashboard/data/search?q=${user}`);
    expect(hits.json.hits).toEqual([{ type: 'user', name: user }]);

    expect((await call('PUT', `/users/${user}/organization`, { org: null })).status).toBe(200);
    expect(await gate.client.exists(`rails:orgs:{org:${org}}:member:${user}`)).toBe(0);
    expect(await gate.client.hget(`rails:users:{user:${user}}`, 'api_key_sha256:web')).toMatch(/^[0-9a-f]{64}$/);
    expect((await call('GET', `/users/${user}`)).json).toMatchObject({ organization: null, geocoding: { quota: 9, monthly_use: 4 } });

    const deleted = await call('DELETE', `/users/${user}?with_usage=true`);
    expect(deleted.status).toBe(200);
    expect(await gate.client.exists(`rails:users:{user:${user}}`)).toBe(0);
    expect(await gate.client.exists(`user:{user:${user}}:geocoder_here:success_responses:${month()}`)).toBe(0);
    expect((await call('GET', `/users/${user}`)).status).toBe(404);
  });

  it('refuses a change to a user frozen by a move, and answers 409 naming the fix', async () => {
    const user = uniqueName('u');
    await call('POST', '/users', { name: user });
    await gate.client.hset(`rails:users:{user:${user}}`, 'moving_to', '{org:elsewhere}', 'move_id', '202611-000000000000');
    const refused = await call('PUT', `/users/${user}/quota/geocoding`, { quota: 3 });
    expect(refused.status).toBe(409);
    expect(refused.json.detail).toContain('moving');
    expect(await gate.client.hget(`rails:users:{user:${user}}`, 'geocoding_quota')).toBe('0');
    await gate.client.del(`rails:users:{user:${user}}`);
  });

  it('the demo on REDIS_CLUSTER seeds its accounts in the cluster layout, serves them, and mounts the admin API on that layout', async () => {
    const target = redisTargetFromEnv({ REDIS_CLUSTER: gate.cluster().nodes.slice(0, 3).map((node) => node.address).join(',') });
    const printed: string[] = [];
    const service = await startDemo({ port: 0, host: '127.0.0.1', redisTarget: target, adminToken: TOKEN, log: (m) => printed.push(m) });
    try {
      expect(service.tollgate.keyLayout.name).toBe('cluster');
      const { user } = service.accounts;
      expect(await gate.client.hgetall(`rails:users:{user:${user.user}}`)).toEqual({ organization: 'tollgate-demo-org' });
      expect(await gate.client.hget(`rails:orgs:{org:tollgate-demo-org}:member:${user.user}`, 'map_key')).toBe(user.key);
      const geocoded = await fetch(`${service.url}/u/${user.user}/api/v1/geocode?q=Madrid,%20ES&api_key=${user.key}`);
      expect(geocoded.status).toBe(200);
      await geocoded.arrayBuffer();
      const shown = await fetch(`${service.url}/admin/users/${user.user}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(shown.status).toBe(200);
      expect(await shown.json()).toMatchObject({ organization: 'tollgate-demo-org', geocoding: { monthly_use: 1 } });
    } finally {
      await service.shutdown();
    }
  });
});

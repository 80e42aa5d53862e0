// API key lifecycle end to end (issue 11 items 1-2): keys made, rotated and revoked with the CLI, checked by the HTTP guard.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import express, { type Express } from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tollgate } from '../../src/index.js';
import { quotaGuard } from '../../src/http/index.js';
import { useNames, writeUser } from '../helpers/fixtures.js';
import { useTestRedis } from '../helpers/redis.js';
import { cliFor } from '../helpers/cli.js';
import { serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
let tollgate: Tollgate;
let base: string;

beforeAll(async () => {
  tollgate = new Tollgate({ redis: redis.client() });
  const app: Express = express();
  app.get('/u/:username/api/v1/thing', quotaGuard({ tollgate, kind: 'geocoding', logger: SILENT_LOGGER }), (_req, res) => {
    res.json({ ok: true });
  });
  base = (await servers.start(app)).url;
});

const { cli, json } = cliFor(redis.url);

const status = async (user: string, key: string): Promise<number> =>
  (await fetch(`${base}/u/${user}/api/v1/thing?api_key=${encodeURIComponent(key)}`)).status;

/** Waits until the Redis server's clock has passed `iso` (expiries are judged on it). */
async function serverClockPast(iso: string): Promise<void> {
  const target = Date.parse(iso);
  for (;;) {
    const [seconds, micros] = await redis.client().time();
    if (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) > target) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('map_key (item 1)', () => {
  it('is shown masked, is listed, and once revoked the key gets 401', async () => {
    const user = name('mk');
    const mapKey = `carto-${user}-abcd`;
    await writeUser(redis.client(), user, { geocoding_quota: '10', map_key: mapKey });
    expect(await status(user, mapKey)).toBe(200);

    const view = await json('user', 'show', user);
    expect(view.has_api_key).toBe(true);
    expect(view.api_keys).toEqual([{ name: 'map_key', form: 'clear', masked: '****abcd', created_at: null, expires_at: null, state: 'active' }]);
    const human = await cli('user', 'show', user);
    expect(human.out).toMatch(/api keys\s+map_key \*\*\*\*abcd/);
    expect(human.out).not.toContain(mapKey);
    expect(JSON.stringify(await json('user', 'keys', user))).not.toContain(mapKey);

    // Without a name, the user's only key is the one revoked: here map_key.
    expect(await json('user', 'revoke-key', user)).toEqual({ ok: true, user, name: 'map_key', revoked: true });
    expect(await redis.client().hget(`rails:users:${user}`, 'map_key')).toBeNull();
    expect(await status(user, mapKey)).toBe(401);
    expect((await json('user', 'show', user)).has_api_key).toBe(false);
  });
});

describe('named keys (item 2)', () => {
  it('a second key does not replace the first; each is revoked alone', async () => {
    const user = name('nk');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const first = await json('user', 'create-key', user);
    const ci = await json('user', 'create-key', user, 'ci');
    expect([first.name, ci.name]).toEqual(['main', 'ci']);
    expect([await status(user, first.apiKey), await status(user, ci.apiKey)]).toEqual([200, 200]);
    // The same name again is refused, and changes nothing.
    const again = await cli('user', 'create-key', user, 'ci');
    expect([again.code, again.err]).toEqual([1, expect.stringContaining('ERR_TOLLGATE_ALREADY_EXISTS')]);
    expect(await status(user, ci.apiKey)).toBe(200);

    const listed = await json<Array<Record<string, unknown>>>('user', 'keys', user);
    expect(listed.map((key) => [key.name, key.form, key.masked, key.state, key.expires_at])).toEqual([
      ['ci', 'sha256', null, 'active', null],
      ['main', 'sha256', null, 'active', null],
    ]);
    expect(listed.every((key) => typeof key.created_at === 'string')).toBe(true);
    const stored = await redis.client().hgetall(`rails:users:${user}`);
    expect(JSON.stringify(listed)).not.toContain(stored['api_key_sha256:ci']!);

    // Two keys: revoking needs a name.
    const ambiguous = await cli('user', 'revoke-key', user);
    expect([ambiguous.code, ambiguous.err]).toEqual([2, expect.stringContaining('name the one to revoke')]);
    expect(await json('user', 'revoke-key', user, 'ci')).toEqual({ ok: true, user, name: 'ci', revoked: true });
    expect([await status(user, first.apiKey), await status(user, ci.apiKey)]).toEqual([200, 401]);
    expect(Object.keys(await redis.client().hgetall(`rails:users:${user}`)).filter((field) => field.includes(':ci'))).toEqual([]);
  });

  it('rotation keeps the old key working until the overlap ends, then 401', async () => {
    const user = name('rk');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const old = await json('user', 'create-key', user, 'app');
    const rotated = await json('user', 'rotate-key', user, 'app', '--overlap', '2');
    expect(rotated).toMatchObject({ name: 'app', previous: 'app-prev' });
    expect([await status(user, old.apiKey), await status(user, rotated.apiKey)]).toEqual([200, 200]);
    const listed = await json<Array<Record<string, unknown>>>('user', 'keys', user);
    expect(listed.find((key) => key.name === 'app-prev')).toMatchObject({ state: 'active', expires_at: rotated.previousExpiresAt });

    await serverClockPast(rotated.previousExpiresAt);
    expect([await status(user, old.apiKey), await status(user, rotated.apiKey)]).toEqual([401, 200]);
    expect((await json<Array<Record<string, unknown>>>('user', 'keys', user)).find((key) => key.name === 'app-prev')?.state).toBe('expired');
  });

  it('rotating map_key to a named key: the CARTO key works for the overlap, then 401', async () => {
    const user = name('rm');
    const mapKey = `carto-${user}`;
    await writeUser(redis.client(), user, { geocoding_quota: '10', map_key: mapKey });
    const rotated = await json('user', 'rotate-key', user, 'map_key', '--overlap', '0');
    expect(rotated).toMatchObject({ name: 'main', previous: 'map-key-prev' });
    // map_key's clear text is gone; its digest expired at once (overlap 0).
    const stored = await redis.client().hgetall(`rails:users:${user}`);
    expect(stored.map_key).toBeUndefined();
    expect(JSON.stringify(stored)).not.toContain(mapKey);
    expect([await status(user, mapKey), await status(user, rotated.apiKey)]).toEqual([401, 200]);
  });

  it('the admin API lists, rotates and revokes keys the same way', async () => {
    const { createAdminRouter } = await import('../../src/admin/router.js');
    const app = express();
    const token = 'key-lifecycle-token-0123456789';
    app.use('/admin', createAdminRouter({ tollgate, token, log: () => undefined }));
    const admin = (await servers.start(app)).url;
    const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
      const response = await fetch(`${admin}/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, json: await response.json() };
    };
    const user = name('ak');
    await writeUser(redis.client(), user, { geocoding_quota: '10' });
    const created = await call('POST', `/users/${user}/api-keys`, { name: 'svc' });
    expect(created.status).toBe(201);
    const rotated = await call('POST', `/users/${user}/api-keys/svc/rotate`, { newName: 'svc2', overlapSeconds: 600 });
    expect(rotated.json).toMatchObject({ name: 'svc2', previous: 'svc' });
    expect([await status(user, created.json.apiKey), await status(user, rotated.json.apiKey)]).toEqual([200, 200]);
    expect((await call('GET', `/users/${user}/api-keys`)).json.map((key: any) => [key.name, key.expires_at === null])).toEqual([
      ['svc', false],
      ['svc2', true],
    ]);
    expect((await call('DELETE', `/users/${user}/api-keys/svc`)).json).toEqual({ name: 'svc', revoked: true });
    expect(await status(user, created.json.apiKey)).toBe(401);
    expect((await call('POST', `/users/${user}/api-keys/svc2/rotate`, { overlapSeconds: -1 })).json.code).toBe('ERR_TOLLGATE_INVALID_ARGUMENT');
    expect((await call('POST', `/users/${user}/api-keys`, { name: 'x', extra: 1 })).json.detail).toMatch(/unknown field extra/);
  });
});

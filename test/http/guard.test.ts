// The quota guard over real HTTP: identity, admission, settlement by response status, 429/401/503 problems, headers.
import { SILENT_LOGGER } from '../../src/observability/logging.js';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tollgate, apiKeyDigest } from '../../src/index.js';
import { badRequest, markEmpty, markOutcome, quotaGuard, type QuotaGuard, type QuotaGuardOptions } from '../../src/http/index.js';
import { snapshot, useNames, writeOrg, writeUser } from '../helpers/fixtures.js';
import { freePort } from '../helpers/redis-server.js';
import { countingClient } from '../helpers/counting-client.js';
import { useTestRedis } from '../helpers/redis.js';
import { call, serveForFile } from './support.js';

const redis = useTestRedis();
const name = useNames(redis.client);
const servers = serveForFile();
let tollgate: Tollgate;
beforeAll(() => {
  tollgate = new Tollgate({ redis: redis.client() });
});

/** Handlers run so far, to prove a refused request never reached one. */
let handlerRuns = 0;

const quiet: ErrorRequestHandler = (_error, _req, res, _next) => {
  res.status(500).json({ error: 'handler failed' });
};

/** An app with one guarded route whose handler ends as `?mode=` says. */
function appWith(guard: QuotaGuard): Express {
  const app = express();
  app.get('/u/:username/api/v1/thing', guard, async (req, res) => {
    handlerRuns += 1;
    switch (req.query.mode) {
      case 'empty':
        markEmpty(res);
        res.json({ results: [] });
        return;
      case 'split':
        markOutcome(res, { success: 2, empty: 1 });
        res.json({ results: [1, 2] });
        return;
      case '500':
        res.status(500).json({ error: 'upstream failed' });
        return;
      case '404':
        res.status(404).json({ error: 'no such thing' });
        return;
      case 'throw':
        throw new Error('handler broke');
      case 'hang':
        // Send the headers, then wait until the client goes away.
        res.status(200).flushHeaders();
        await new Promise((resolve) => res.once('close', resolve));
        return;
      default:
        res.json({ ok: true });
    }
  });
  app.use(quiet);
  return app;
}

interface Setup {
  readonly url: string;
  readonly guard: QuotaGuard;
}

async function setup(extra: Partial<QuotaGuardOptions> = {}): Promise<Setup> {
  const guard = quotaGuard({
    tollgate,
    kind: 'geocoding',
    logger: SILENT_LOGGER,
    cost: (req) => {
      const raw = req.query.cost;
      if (raw === undefined) return 1;
      const cost = Number(raw);
      if (!Number.isInteger(cost) || cost < 1) throw badRequest('cost must be a positive integer');
      return cost;
    },
    ...extra,
  });
  const served = await servers.start(appWith(guard));
  return { url: served.url, guard };
}

/** A user with quota `quota` and key `key` (in map_key). */
async function user(quota: number, fields: Record<string, string> = {}): Promise<{ user: string; key: string }> {
  const id = name('u');
  const key = `key-${id}`;
  await writeUser(redis.client(), id, { geocoding_quota: String(quota), map_key: key, ...fields });
  return { user: id, key };
}

const thing = (url: string, user: string, query: string): string => `${url}/u/${user}/api/v1/thing?${query}`;

async function metrics(user: string): Promise<Record<string, number> & { used: number }> {
  const usage = await tollgate.usage({ user, kind: 'geocoding' });
  return { ...usage.metrics, used: usage.used };
}

describe('admission and settlement', () => {
  it('admits with the key in api_key, runs the handler, settles success and sends the RateLimit headers', async () => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(10);
    const reply = await call(thing(url, id, `api_key=${key}`));
    await guard.drain();
    expect(reply.status).toBe(200);
    const info = await tollgate.quota({ user: id, kind: 'geocoding' });
    const windowSeconds = (info.resetsAt.getTime() - info.cycleStart.getTime()) / 1000;
    expect(reply.headers.get('ratelimit-policy')).toBe(`"geocoding";q=10;w=${windowSeconds}`);
    const state = /^"geocoding";r=(\d+);t=(\d+)$/.exec(reply.headers.get('ratelimit') ?? '');
    expect(state?.[1]).toBe('9');
    expect(Number(state?.[2])).toBeGreaterThan(0);
    expect(Number(state?.[2])).toBeLessThanOrEqual(windowSeconds);
    expect(await metrics(id)).toMatchObject({ success_responses: 1, total_requests: 1, empty_responses: 0, failed_responses: 0, used: 1 });
  });

  it('accepts the key as Authorization: Bearer, and a key stored only as api_key_sha256 (as the CLI writes it)', async () => {
    const { url, guard } = await setup();
    const id = name('u');
    const key = `secret-${id}`;
    const digest = apiKeyDigest(key);
    await writeUser(redis.client(), id, { geocoding_quota: '5', api_key_sha256: digest });
    const viaBearer = await call(thing(url, id, ''), { headers: { Authorization: `Bearer ${key}` } });
    const viaQuery = await call(thing(url, id, `api_key=${key}`));
    await guard.drain();
    expect([viaBearer.status, viaQuery.status]).toEqual([200, 200]);
    expect((await metrics(id)).used).toBe(2);
  });

  it('a 2xx the handler marks empty is counted under empty_responses', async () => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(10);
    expect((await call(thing(url, id, `api_key=${key}&mode=empty`))).status).toBe(200);
    await guard.drain();
    expect(await metrics(id)).toMatchObject({ success_responses: 0, empty_responses: 1, total_requests: 1, used: 1 });
  });

  it('a split outcome from the handler lands in both metrics', async () => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(10);
    expect((await call(thing(url, id, `api_key=${key}&mode=split&cost=3`))).status).toBe(200);
    await guard.drain();
    expect(await metrics(id)).toMatchObject({ success_responses: 2, empty_responses: 1, total_requests: 3, used: 3 });
  });

  it.each([
    ['a handler answering 500', '500', 500],
    ['a handler that throws', 'throw', 500],
    ['a 4xx the handler answers after admission', '404', 404],
  ])('%s is refunded: failed_responses, not used, and its RateLimit header says so', async (_label, mode, status) => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(10);
    const reply = await call(thing(url, id, `api_key=${key}&mode=${mode}&cost=2`));
    expect(reply.status).toBe(status);
    expect(reply.headers.get('ratelimit')).toMatch(/^"geocoding";r=10;t=\d+$/);
    await guard.drain();
    expect(await metrics(id)).toMatchObject({ success_responses: 0, failed_responses: 2, total_requests: 2, used: 0 });
  });

  it('a client that goes away before the response ends is refunded', async () => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(10);
    const abort = new AbortController();
    const response = await fetch(thing(url, id, `api_key=${key}&mode=hang`), { signal: abort.signal });
    expect(response.status).toBe(200);
    abort.abort();
    await guard.drain();
    expect(await metrics(id)).toMatchObject({ success_responses: 0, failed_responses: 1, used: 0 });
  });

  it('a soft-limited user passes its quota', async () => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(1, { soft_geocoding_limit: 'TRUE' });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await call(thing(url, id, `api_key=${key}`))).status);
    await guard.drain();
    expect(statuses).toEqual([200, 200, 200]);
    expect((await metrics(id)).used).toBe(3);
  });

  it('org members spend one pool: the org quota holds across users and both owners are counted', async () => {
    const { url, guard } = await setup();
    const org = name('o');
    await writeOrg(redis.client(), org, { geocoding_quota: '3' });
    const a = await user(0, { organization: org });
    const b = await user(0, { organization: org });
    const statuses = [];
    for (const caller of [a, b, a, b]) statuses.push((await call(thing(url, caller.user, `api_key=${caller.key}`))).status);
    await guard.drain();
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await tollgate.usage({ org, kind: 'geocoding' })).used).toBe(3);
    expect((await metrics(a.user)).used + (await metrics(b.user)).used).toBe(3);
  });
});

describe('one round trip', () => {
  it('a successful guarded request costs exactly one Redis command, the API key check included; a failed one adds one settle', async () => {
    const { client, sent } = countingClient(redis.url());
    const counting = new Tollgate({ redis: client });
    try {
      const { url, guard } = await setup({ tollgate: counting });
      const { user: id, key } = await user(100);
      expect((await call(thing(url, id, `api_key=${key}`))).status).toBe(200); // reads and caches the config
      await guard.drain();
      sent.length = 0;
      for (let i = 0; i < 20; i += 1) expect((await call(thing(url, id, `api_key=${key}`))).status).toBe(200);
      await guard.drain();
      expect(sent).toEqual(Array(20).fill('evalsha'));
      sent.length = 0;
      expect((await call(thing(url, id, `api_key=${key}&mode=500`))).status).toBe(500);
      await guard.drain();
      expect(sent).toEqual(['evalsha', 'evalsha']);
      expect(await metrics(id)).toMatchObject({ success_responses: 21, failed_responses: 1, used: 21 });
    } finally {
      await counting.close();
      client.disconnect();
    }
  });
});

describe('refusals', () => {
  it('over quota: 429 problem+json with the CARTO message, Retry-After to the next cycle, headers, nothing counted', async () => {
    const { url, guard } = await setup();
    const { user: id, key } = await user(2);
    for (let i = 0; i < 2; i += 1) expect((await call(thing(url, id, `api_key=${key}`))).status).toBe(200);
    await guard.drain();
    const before = await snapshot(redis.client(), [id]);
    const runs = handlerRuns;
    const reply = await call(thing(url, id, `api_key=${key}`));
    expect(reply.status).toBe(429);
    expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const info = await tollgate.quota({ user: id, kind: 'geocoding' });
    expect(reply.body).toEqual({
      type: 'urn:tollgate:problem:quota-exceeded',
      title: 'Quota exceeded',
      status: 429,
      detail: 'You have reached the limit of your quota',
      code: 'ERR_TOLLGATE_QUOTA_EXCEEDED',
      service: 'geocoding',
      serviceType: 'geocoder_here',
      quota: 2,
      used: 2,
      cost: 1,
      resetsAt: info.resetsAt.toISOString(),
    });
    const retryAfter = Number(reply.headers.get('retry-after'));
    const expected = Math.ceil((info.resetsAt.getTime() - Date.now()) / 1000);
    expect(Math.abs(retryAfter - expected)).toBeLessThanOrEqual(5);
    expect(reply.headers.get('ratelimit')).toMatch(/^"geocoding";r=0;t=\d+$/);
    expect(reply.headers.get('ratelimit-policy')).toMatch(/^"geocoding";q=2;w=\d+$/);
    expect(handlerRuns).toBe(runs);
    expect(await snapshot(redis.client(), [id])).toEqual(before);
  });

  it('a cost larger than what remains is refused whole, nothing counted', async () => {
    const { url } = await setup();
    const { user: id, key } = await user(2);
    const before = await snapshot(redis.client(), [id]);
    const reply = await call(thing(url, id, `api_key=${key}&cost=3`));
    expect(reply.status).toBe(429);
    expect(reply.body).toMatchObject({ quota: 2, used: 0, cost: 3 });
    expect(await snapshot(redis.client(), [id])).toEqual(before);
  });

  it('a cost function that refuses the input answers 400 and nothing is counted', async () => {
    const { url } = await setup();
    const { user: id, key } = await user(5);
    const before = await snapshot(redis.client(), [id]);
    const runs = handlerRuns;
    const reply = await call(thing(url, id, `api_key=${key}&cost=-5`));
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ status: 400, code: 'ERR_TOLLGATE_BAD_REQUEST', detail: 'cost must be a positive integer' });
    expect(handlerRuns).toBe(runs);
    expect(await snapshot(redis.client(), [id])).toEqual(before);
  });

  it('401 problem+json for a missing, wrong, unknown or foreign key, never counted', async () => {
    const { url } = await setup();
    const alice = await user(5);
    const bob = await user(5);
    const ghost = name('ghost');
    const cases: Array<[string, string, Record<string, string>, boolean]> = [
      ['no key', thing(url, alice.user, ''), {}, true],
      ['wrong key', thing(url, alice.user, 'api_key=nope'), {}, false],
      ['unknown user', thing(url, ghost, `api_key=${alice.key}`), {}, false],
      ["another user's key", thing(url, alice.user, `api_key=${bob.key}`), {}, false],
      ['a key of the right user in a header, another in the query', thing(url, alice.user, `api_key=${bob.key}`), { Authorization: `Bearer ${alice.key}` }, false],
      ['a repeated api_key', thing(url, alice.user, `api_key=${alice.key}&api_key=${alice.key}`), {}, false],
      ['a malformed Bearer header', thing(url, alice.user, ''), { Authorization: 'Bearer' }, false],
      ['a user name with a key separator', thing(url, `${alice.user}%3Ax`, `api_key=${alice.key}`), {}, false],
    ];
    const before = await snapshot(redis.client(), [alice.user, bob.user, ghost]);
    const runs = handlerRuns;
    for (const [label, target, headers, missing] of cases) {
      const reply = await call(target, { headers });
      expect(reply.status, label).toBe(401);
      expect(reply.headers.get('content-type'), label).toMatch(/^application\/problem\+json/);
      expect(reply.headers.get('www-authenticate'), label).toMatch(/^Bearer/);
      expect(reply.headers.get('ratelimit'), label).toBeNull();
      expect(reply.body, label).toMatchObject({ status: 401, code: 'ERR_TOLLGATE_UNAUTHORIZED', type: 'urn:tollgate:problem:unauthorized' });
      expect(String(reply.body.detail).includes('api_key'), label).toBe(missing);
      expect(JSON.stringify(reply.body), label).not.toContain(alice.key);
    }
    expect(handlerRuns).toBe(runs);
    expect(await snapshot(redis.client(), [alice.user, bob.user, ghost])).toEqual(before);
  });

  it('a garbled quota in the user hash answers 500 without details and writes nothing', async () => {
    const { url } = await setup();
    const { user: id, key } = await user(5, { geocoding_quota: 'lots' });
    const before = await snapshot(redis.client(), [id]);
    const reply = await call(thing(url, id, `api_key=${key}`));
    expect(reply.status).toBe(500);
    expect(reply.body).toMatchObject({ code: 'ERR_TOLLGATE_INVALID_CONFIG' });
    expect(JSON.stringify(reply.body)).not.toContain('rails:users');
    expect(await snapshot(redis.client(), [id])).toEqual(before);
  });
});

describe('identify()', () => {
  it("an app's own identify() replaces the key check; null answers 401", async () => {
    const { url, guard } = await setup({
      identify: (req) => {
        const header = req.headers['x-app-user'];
        return typeof header === 'string' ? { user: header } : null;
      },
    });
    const { user: id } = await user(5);
    const admitted = await call(thing(url, 'ignored', ''), { headers: { 'x-app-user': id } });
    const refused = await call(thing(url, 'ignored', ''));
    await guard.drain();
    expect([admitted.status, refused.status]).toEqual([200, 401]);
    expect((await metrics(id)).used).toBe(1);
  });
});

describe('Redis unavailable', () => {
  it('fails closed by default: 503 problem+json with Retry-After, handler not run', async () => {
    const port = await freePort();
    const down = new Tollgate({ redis: `redis://127.0.0.1:${port}`, timeoutMs: 200 });
    try {
      const guard = quotaGuard({ tollgate: down, kind: 'geocoding', timeoutMs: 200, logger: SILENT_LOGGER });
      const served = await servers.start(appWith(guard));
      const runs = handlerRuns;
      const byKey = await call(thing(served.url, 'someone', 'api_key=k'));
      expect(byKey.status).toBe(503);
      expect(byKey.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(byKey.headers.get('retry-after')).toBe('5');
      expect(byKey.body).toMatchObject({ status: 503, code: 'ERR_TOLLGATE_REDIS_UNAVAILABLE' });
      expect(handlerRuns).toBe(runs);
      await guard.close();
    } finally {
      await down.close();
    }
  });
});

describe('options', () => {
  it('are checked at construction: unknown keys and bad values throw ERR_TOLLGATE_INVALID_OPTIONS', () => {
    const bad: unknown[] = [
      { tollgate, kind: 'geocoding', retries: 3 },
      { tollgate, kind: 'teleport' },
      { tollgate: {}, kind: 'geocoding' },
      { tollgate, kind: 'geocoding', journalMaxEntries: 0 },
      { tollgate, kind: 'geocoding', policyName: 'has "quotes"' },
      { tollgate, kind: 'geocoding', cost: 3 },
    ];
    for (const options of bad) {
      expect(() => quotaGuard(options as QuotaGuardOptions)).toThrow(expect.objectContaining({ code: 'ERR_TOLLGATE_INVALID_OPTIONS' }));
    }
  });

  it('are frozen with their defaults', () => {
    const guard = quotaGuard({ tollgate, kind: 'isolines' });
    expect(Object.isFrozen(guard.options)).toBe(true);
    expect(guard.options).toMatchObject({ failOpen: false, timeoutMs: 1000, journalMaxEntries: 10_000 });
  });
});

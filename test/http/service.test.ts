// First run and shutdown of the demo service: Redis discovery, a private redis-server, seeding, graceful stop.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNTS, resolveRedis, seedDemo } from '../../demo/src/bootstrap.js';
import { redisAnswers } from '../../demo/src/private-server.js';
import type { IsolinesProvider, IsolinesRequest, Isoline } from '../../demo/src/isolines.js';
import { StraightLineIsolines } from '../../demo/src/isolines.js';
import { parseFailOpen, startDemo } from '../../demo/src/service.js';
import { snapshot } from '../helpers/fixtures.js';
import { freePort, startRedisServer } from '../helpers/redis-server.js';
import { call } from './support.js';

const deadUrl = async (): Promise<string> => `redis://127.0.0.1:${await freePort()}`;

describe('finding a Redis', () => {
  it('starts a private redis-server when nothing answers at the default URL, and says so', async () => {
    const messages: string[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-service-'));
    const found = await resolveRedis({ defaultUrl: await deadUrl(), dataDir, log: (m) => messages.push(m) });
    try {
      expect(found.private).toBe(true);
      expect(await redisAnswers(found.url)).toBe(true);
      expect(messages.join('\n')).toContain('started a private redis-server');
    } finally {
      await found.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(await redisAnswers(found.url)).toBe(false);
  });

  it('uses the default URL when it answers, and REDIS_URL when given; a dead REDIS_URL is an error without its password', async () => {
    const server = await startRedisServer();
    try {
      const byDefault = await resolveRedis({ defaultUrl: server.url, log: () => undefined });
      expect([byDefault.url, byDefault.private]).toEqual([server.url, false]);
      const byEnv = await resolveRedis({ url: server.url, defaultUrl: await deadUrl(), log: () => undefined });
      expect([byEnv.url, byEnv.private]).toEqual([server.url, false]);
      const dead = `redis://:hunter2@127.0.0.1:${await freePort()}`;
      const failure = await resolveRedis({ url: dead, log: () => undefined }).catch((error: Error) => error);
      expect(failure).toBeInstanceOf(Error);
      expect((failure as Error).message).toContain('REDIS_URL');
      expect((failure as Error).message).not.toContain('hunter2');
    } finally {
      await server.stop();
    }
  });
});

describe('seeding', () => {
  const server = startRedisServer();
  afterAll(async () => (await server).stop());

  it('creates the demo org and users when absent and leaves them alone afterwards', async () => {
    const client = new Redis((await server).url);
    try {
      const first = await seedDemo(client);
      expect(first.user).toMatchObject({ user: DEMO_ACCOUNTS.user, created: true });
      expect(first.user.key).toMatch(/^[0-9a-f]{32}$/);
      expect(await client.hget(`rails:users:${DEMO_ACCOUNTS.user}`, 'organization')).toBe(DEMO_ACCOUNTS.org);
      const names = [DEMO_ACCOUNTS.org, DEMO_ACCOUNTS.user];
      await client.hset(`rails:orgs:${DEMO_ACCOUNTS.org}`, 'geocoding_quota', '5');
      const before = await snapshot(client, names);
      const second = await seedDemo(client);
      expect(second.user).toEqual({ ...first.user, created: false });
      expect(second.smallUser.key).toBe(first.smallUser.key);
      expect(await snapshot(client, names)).toEqual(before);
    } finally {
      client.disconnect();
    }
  });
});

/** Isolines that wait for the test to let them answer, to hold a request in flight. */
class HeldIsolines implements IsolinesProvider {
  readonly name = 'held';
  readonly followsRoads = false;
  readonly #inner = new StraightLineIsolines();
  started: Promise<void>;
  #start = (): void => undefined;
  #release = (): void => undefined;
  readonly #released: Promise<void>;

  constructor() {
    this.started = new Promise((resolve) => {
      this.#start = resolve;
    });
    this.#released = new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  release(): void {
    this.#release();
  }

  async isolines(request: IsolinesRequest): Promise<readonly Isoline[]> {
    this.#start();
    await this.#released;
    return this.#inner.isolines(request);
  }
}

describe('the service', () => {
  it('prints ready-to-paste curl commands that work, refuses over quota, and stops gracefully with a request in flight', async () => {
    const server = await startRedisServer();
    const held = new HeldIsolines();
    const messages: string[] = [];
    const service = await startDemo({ port: 0, host: '127.0.0.1', redisUrl: server.url, isolines: held, log: (m) => messages.push(m) });
    const admin = new Redis(server.url);
    try {
      const banner = messages.join('\n');
      const geocode = /curl -i '([^']+\/geocode\?q=[^']+)'/.exec(banner)?.[1];
      expect(geocode).toBeDefined();
      const answered = await call(geocode as string);
      expect(answered.status).toBe(200);
      expect((answered.body.features as Array<{ properties: { name: string } }>)[0]?.properties.name).toBe('Madrid');

      const refusal = /Refused:[^\n]*\n\s+curl -i '([^']+)'/.exec(banner)?.[1];
      expect(refusal).toBeDefined();
      const refused = await call(refusal as string);
      expect(refused.status).toBe(429);
      expect(refused.body.detail).toBe('You have reached the limit of your quota');

      // A request in flight when shutdown starts is finished and settled before Redis closes.
      const key = service.accounts.user.key as string;
      const inFlight = call(`${service.url}/u/${DEMO_ACCOUNTS.user}/api/v1/isolines?lat=1&lon=1&range=60,120&api_key=${key}`);
      await held.started;
      const stopping = service.shutdown();
      held.release();
      expect((await inFlight).status).toBe(200);
      await stopping;
      const usage = await admin.zrange(`user:${DEMO_ACCOUNTS.user}:straightline_isolines:success_responses:${yyyymmNow()}`, 0, '-1', 'WITHSCORES');
      // success_responses of isolines is written by the settlement only: it ran before shutdown finished.
      expect(usage[1]).toBe('1');
      await expect(fetch(`${service.url}/healthz`)).rejects.toThrow();
    } finally {
      held.release();
      await service.shutdown();
      admin.disconnect();
      await server.stop();
    }
  });

  it('reads TOLLGATE_FAIL_OPEN as quota kinds and rejects unknown ones', () => {
    expect(parseFailOpen(undefined)).toEqual([]);
    expect(parseFailOpen('geocoding, isolines')).toEqual(['geocoding', 'isolines']);
    expect(() => parseFailOpen('geocoding,teleport')).toThrow(/teleport/);
  });
});

function yyyymmNow(): string {
  const now = new Date();
  return `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

// Redis Cluster, on a real 3-master/3-replica cluster: the CARTO layout is refused at construction, naming the cluster layout; REDIS_CLUSTER builds a working client; the demo runs there.
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, InvalidInputError, Tollgate } from '../../src/index.js';
import { runCli } from '../../src/cli/program.js';
import { startDemo } from '../../demo/src/service.js';
import { DEMO_ACCOUNTS } from '../../demo/src/bootstrap.js';
import { CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { redisTargetFromEnv } from '../../src/core/redis-target.js';
import { closeRedis, openRedis } from '../../src/redis/topology.js';
import { useRedisCluster } from '../helpers/redis-cluster.js';
import { uniqueName } from '../helpers/fixtures.js';
import { sink } from '../helpers/streams.js';

const cluster = useRedisCluster();
let client: Cluster;
beforeAll(async () => {
  console.log(`Redis Cluster (3 masters + 3 replicas) started in ${cluster().startupMs} ms`);
  client = await cluster().client();
});
afterAll(() => client.disconnect());

const env = (): Record<string, string> => ({ REDIS_CLUSTER: cluster().nodes.slice(0, 3).map((node) => node.address).join(',') });

/** Every key on every master: what a refused construction must leave as it found it. */
async function allKeys(): Promise<string[]> {
  const keys = await Promise.all(client.nodes('master').map((node) => node.keys('*')));
  return keys.flat().sort();
}

/** What `new Tollgate(options)` threw; fails the test if it did not throw. */
function constructionError(options: ConstructorParameters<typeof Tollgate>[0]): unknown {
  try {
    new Tollgate(options);
  } catch (error) {
    return error;
  }
  throw new Error('new Tollgate() accepted the options');
}

function expectLayoutRefusal(error: unknown): void {
  expect(error).toBeInstanceOf(InvalidInputError);
  expect(error).toMatchObject({ code: ERROR_CODES.invalidOptions });
  expect((error as Error).message).toContain("needs the cluster key layout (docs/cluster.md; option keyLayout: 'cluster')");
}

describe('a Redis Cluster with the CARTO layout', () => {
  it('is what the refusal is about: a member\'s config and its org\'s are in different slots, and one script cannot span them', async () => {
    const user = uniqueName('u');
    const userSlot = await client.cluster('KEYSLOT', `rails:users:${user}`);
    let org = uniqueName('o');
    // Most names land in different slots; take one that does, as almost every org does in production.
    while ((await client.cluster('KEYSLOT', `rails:orgs:${org}`)) === userSlot) org = uniqueName('o');
    await client.hset(`rails:users:${user}`, 'organization', org);
    await client.hset(`rails:orgs:${org}`, 'geocoding_quota', '100');
    try {
      const error = await client
        .eval("return redis.call('HGET', KEYS[2], 'geocoding_quota')", 2, `rails:users:${user}`, `rails:orgs:${org}`)
        .catch((caught: unknown) => caught);
      expect(String(error)).toContain('CROSSSLOT');
    } finally {
      await client.del(`rails:users:${user}`);
      await client.del(`rails:orgs:${org}`);
    }
  });

  it('is refused at construction when given as an ioredis Cluster, naming the cluster layout, and nothing is written', async () => {
    const before = await allKeys();
    expectLayoutRefusal(constructionError({ redis: client }));
    expect(await allKeys()).toEqual(before);
  });

  it('is accepted with keyLayout: \'cluster\', as a client or as seed URLs, waitForReplicas included', async () => {
    const withClient = new Tollgate({ redis: client, keyLayout: 'cluster', waitForReplicas: 1 });
    expect(withClient.keyLayout.name).toBe('cluster');
    await withClient.close();
    const fromSeeds = new Tollgate({ redis: cluster().urls, keyLayout: 'cluster' });
    await fromSeeds.close();
    expect(constructionError({ redis: client, keyLayout: 'sharded' as never })).toMatchObject({ code: ERROR_CODES.invalidOptions });
  });

  it('is refused at construction when given as a list of seed URLs', () => {
    expectLayoutRefusal(constructionError({ redis: cluster().urls }));
    // A malformed list is a plain option error, not the layout's.
    expect(constructionError({ redis: [] })).toMatchObject({ code: ERROR_CODES.invalidOptions, message: expect.stringMatching(/at least one cluster seed/) });
    expect(constructionError({ redis: ['10.0.0.1:7000'] })).toMatchObject({ message: expect.stringMatching(/must be a redis:\/\/ or rediss:\/\/ URL/) });
  });

  it('REDIS_CLUSTER builds a client that reaches every master (MOVED followed)', async () => {
    const target = redisTargetFromEnv(env());
    expect(target?.kind).toBe('cluster');
    const fromEnv = openRedis(target!, { timeoutMs: 2000 });
    try {
      const keys = Array.from({ length: 30 }, (_, i) => uniqueName(`k${i}`));
      for (const key of keys) await fromEnv.set(key, key);
      const slots = await Promise.all(keys.map((key) => fromEnv.cluster('KEYSLOT', key) as Promise<number>));
      const masters = await Promise.all(client.nodes('master').map(async (node) => (await node.dbsize()) > 0));
      expect(new Set(slots).size).toBeGreaterThan(1);
      expect(masters.filter(Boolean).length).toBe(3);
      expect(await Promise.all(keys.map((key) => fromEnv.get(key)))).toEqual(keys);
      for (const key of keys) await fromEnv.del(key);
    } finally {
      await closeRedis(fromEnv);
    }
  });

  it('the CLI on REDIS_CLUSTER with --key-layout carto exits 2 with the layout refusal', async () => {
    const out = sink();
    const err = sink();
    const code = await runCli(['--key-layout', 'carto', 'user', 'show', 'alice'], { stdout: out.stream, stderr: err.stream, env: env() });
    expect(code).toBe(2);
    expect(err.text()).toContain('needs the cluster key layout');
    expect(err.text()).toContain(ERROR_CODES.invalidOptions);
  });

  it('the demo on REDIS_CLUSTER with the CARTO layout refuses to start with the same reason', async () => {
    const messages: string[] = [];
    const error = await startDemo({ port: 0, host: '127.0.0.1', redisTarget: redisTargetFromEnv(env()), keyLayout: 'carto', log: (m) => messages.push(m) }).catch(
      (caught: unknown) => caught,
    );
    expectLayoutRefusal(error);
    expect(messages.join('\n')).toContain('Using the Redis Cluster seeded by');
  });
});

describe('the demo on REDIS_CLUSTER', () => {
  /** The sum of a usage sorted set's scores (the test runs within one day). */
  async function total(key: string): Promise<number> {
    const flat = await client.zrange(key, 0, '-1', 'WITHSCORES');
    let sum = 0;
    for (let i = 1; i < flat.length; i += 2) sum += Number(flat[i]);
    return sum;
  }

  it('starts with the cluster layout, seeds its accounts there, serves a guarded geocode counted in the pool and refuses a wrong key', async () => {
    const messages: string[] = [];
    const service = await startDemo({ port: 0, host: '127.0.0.1', redisTarget: redisTargetFromEnv(env()), log: (m) => messages.push(m) });
    const { org, user, smallUser } = DEMO_ACCOUNTS;
    const layout = CLUSTER_LAYOUT;
    const now = new Date();
    const month = `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    const pool = layout.usageKey({ type: 'org', name: org }, org, 'geocoder_geonames', 'success_responses', month);
    const own = layout.usageKey({ type: 'user', name: user }, org, 'geocoder_geonames', 'success_responses', month);
    const requests = layout.usageKey({ type: 'org', name: org }, org, 'geocoder_geonames', 'total_requests', month);
    let stopped = false;
    try {
      expect(messages.join('\n')).toContain('Using the Redis Cluster seeded by');
      expect(service.tollgate.keyLayout.name).toBe('cluster');
      // Seeded in the cluster layout: the member's fields in the org's slot, its directory entry naming the org only.
      expect(await client.hgetall(layout.directoryKey(user))).toEqual({ organization: org });
      expect(await client.hget(layout.userConfigKey(user, org), 'map_key')).toBe(service.accounts.user.key);
      expect(await client.cluster('KEYSLOT', layout.userConfigKey(user, org))).toBe(await client.cluster('KEYSLOT', layout.orgConfigKey(org)));
      expect(await client.hget(layout.directoryKey(smallUser), 'map_key')).toBe(service.accounts.smallUser.key);
      for (const carto of [`rails:users:${user}`, `rails:orgs:${org}`, `rails:users:${smallUser}`]) expect(await client.exists(carto)).toBe(0);

      const base = `${service.url}/u/${user}/api/v1/geocode?q=Madrid,%20ES`;
      const answered = await fetch(`${base}&api_key=${service.accounts.user.key}`);
      expect(answered.status).toBe(200);
      expect(((await answered.json()) as { features: Array<{ properties: { name: string } }> }).features[0]?.properties.name).toBe('Madrid');

      const wrong = await fetch(`${base}&api_key=not-the-key-${service.accounts.user.key}`);
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('content-type')).toContain('application/problem+json');

      const refused = await fetch(`${service.url}/u/${smallUser}/api/v1/isolines?lat=40.4168&lon=-3.7038&range=300,600,900&api_key=${service.accounts.smallUser.key}`);
      expect(refused.status).toBe(429);

      await service.shutdown(); // settles what is pending
      stopped = true;
      expect(await total(pool)).toBe(1);
      expect(await total(own)).toBe(1);
      expect(await total(requests)).toBe(1); // the wrong key counted nothing
      expect(await client.exists(`org:${org}:geocoder_geonames:success_responses:${month}`)).toBe(0);
    } finally {
      if (!stopped) await service.shutdown();
    }
  });
});

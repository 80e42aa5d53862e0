// `tollgate migrate` on real servers: 100,000 CARTO users into a 3+3 cluster and back, re-run, conflicts, dry run, a moving source, bad input.
import { Writable } from 'node:stream';
import { Redis, type Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { runMigration } from '../../src/admin/migration.js';
import { sha256Hex } from '../../src/core/api-keys.js';
import { AuthenticationError, Tollgate } from '../../src/index.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { CLUSTER_LAYOUT } from '../../src/core/layout.js';
import { SourceChangedError } from '../../src/core/migration.js';
import { useRedisCluster } from '../helpers/redis-cluster.js';
import { startRedisServer, type TestRedis } from '../helpers/redis.js';
import { sink } from '../helpers/streams.js';

const cluster = useRedisCluster();
let source: TestRedis;
let back: TestRedis;
let sourceClient: Redis;
let clusterClient: Cluster;

const LONE = 90_000;
const ORGS = 1_000;
const MEMBERS = 10_000;
const MONTH = '202611';
const HOUR_MS = 3_600_000;

const lone = (i: number): string => `l${i}`;
const member = (k: number): string => `m${k}`;
const orgOf = (k: number): string => `o${k % ORGS}`;
const org = (j: number): string => `o${j}`;

/** Keys seeded on purpose that the migration must not copy, by why. */
const NOT_COPIED = {
  leftOut: ['tollgate:rsv:k3j.x1.1', 'tollgate:journal:fo-1'],
  unmapped: [
    'rails:users:bad name', // a name with a space: not a name Tollgate builds
    `user:l1:geocoder_here:bogus_metric:${MONTH}`, // unknown metric
    `tollgate:credits:user:l5:geocoder_here:${MONTH}`, // a ledger of a user in no org
    'rails:users:badorg', // organization is not a valid org name...
    `user:badorg:geocoder_here:success_responses:${MONTH}`, // ...so its counters have no home either
  ],
  other: ['sessions:abc'],
};
const EXPECTED = { users: LONE + 2 * MEMBERS, orgs: ORGS, usage: LONE + 2 * MEMBERS + 2 * ORGS, requests: 2_000, credits: MEMBERS + ORGS, adjustments: 100 };
const EXPECTED_TOTAL = Object.values(EXPECTED).reduce((sum, n) => sum + n, 0);

async function seed(client: Redis): Promise<void> {
  let pipeline = client.pipeline();
  let queued = 0;
  const flush = async (force = false): Promise<void> => {
    if (queued >= 5000 || (force && queued > 0)) {
      await pipeline.exec();
      pipeline = client.pipeline();
      queued = 0;
    }
  };
  // A lone user has one usage key, members and orgs two (success and total).
  const usage = (who: string, i: number, both = true): void => {
    pipeline.zadd(`${who}:geocoder_here:success_responses:${MONTH}`, i % 97, '01', 5, '02', i, '15');
    if (both) pipeline.zadd(`${who}:geocoder_here:total_requests:${MONTH}`, (i % 97) + 1, '01', 6, '02');
    queued += 2;
  };
  for (let i = 0; i < LONE; i += 1) {
    const fields: Record<string, string> = {
      geocoding_quota: String(i % 1000),
      geocoder_provider: 'heremaps',
      soft_geocoding_limit: i % 2 === 0 ? 'true' : 'false',
      'api_key_sha256:main': i.toString(16).padStart(64, '0'),
    };
    if (i % 10 === 0) fields.period_end_date = '2016-10-10 00:00:00 UTC';
    pipeline.hset(`rails:users:${lone(i)}`, fields);
    queued += 1;
    usage(`user:${lone(i)}`, i, false);
    await flush();
  }
  for (let k = 0; k < MEMBERS; k += 1) {
    pipeline.hset(`rails:users:${member(k)}`, {
      organization: orgOf(k),
      geocoding_quota: '0',
      credits_allocation_millicredits: '5000',
      credits_spent_millicredits: String(k),
    });
    pipeline.zadd(`tollgate:credits:user:${member(k)}:geocoder_here:${MONTH}`, 1500, '01', k, '02');
    queued += 2;
    usage(`user:${member(k)}`, k);
    await flush();
  }
  for (let j = 0; j < ORGS; j += 1) {
    pipeline.hset(`rails:orgs:${org(j)}`, { geocoding_quota: '100000', credits_enabled: 'true', credits_balance_millicredits: '1000000', geocoder_provider: 'heremaps' });
    pipeline.zadd(`tollgate:credits:org:${org(j)}:geocoder_here:${MONTH}`, 15_000, '01');
    queued += 2;
    usage(`org:${org(j)}`, j);
    await flush();
  }
  for (let i = 0; i < 1000; i += 1) {
    pipeline.set(`tollgate:request:${lone(i)}:r${i}`, JSON.stringify({ match: `geocoding|1|${i}`, sig: `s${i}` }), 'PX', HOUR_MS);
    pipeline.set(`tollgate:request:${member(i)}:r${i}`, JSON.stringify({ match: `geocoding|2|${i}`, sig: `t${i}` }), 'PX', HOUR_MS);
    queued += 2;
  }
  for (let i = 0; i < 50; i += 1) {
    for (const who of [lone(i), member(i)]) {
      const entries = [3, 2, 1].map((n) => JSON.stringify({ at: `2026-11-0${n}T00:00:00.000Z`, kind: 'geocoding', units: n, reason: `r${n}` }));
      pipeline.rpush(`tollgate:adjustments:${who}`, ...entries);
      queued += 1;
    }
  }
  pipeline.hset('tollgate:rsv:k3j.x1.1', '1', 'p1:abc');
  pipeline.set('tollgate:journal:fo-1', '1', 'PX', HOUR_MS);
  pipeline.hset('rails:users:bad name', 'geocoding_quota', '1');
  pipeline.zadd(`user:l1:geocoder_here:bogus_metric:${MONTH}`, 1, '01');
  pipeline.zadd(`tollgate:credits:user:l5:geocoder_here:${MONTH}`, 1, '01');
  pipeline.hset('rails:users:badorg', 'organization', 'no good');
  pipeline.zadd(`user:badorg:geocoder_here:success_responses:${MONTH}`, 1, '01');
  pipeline.set('sessions:abc', 'x');
  queued += 8;
  await flush(true);
}

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function tollgate(env: Record<string, string>, ...args: string[]): Promise<Run> {
  const out = sink();
  const err = sink();
  const code = await runCli(args, { stdout: out.stream, stderr: err.stream, env });
  return { code, out: out.text(), err: err.text() };
}

const masters = (): string => cluster().nodes.slice(0, 3).map((node) => node.address).join(',');
const toCluster = (...extra: string[]): Promise<Run> =>
  tollgate({ REDIS_URL: source.url }, '--json', 'migrate', '--to', 'cluster', '--target-cluster', masters(), ...extra);

/** DBSIZE of each master, in a stable order. */
async function sizes(): Promise<number[]> {
  const nodes = clusterClient.nodes('master').sort((a, b) => Number(a.options.port) - Number(b.options.port));
  return Promise.all(nodes.map((node) => node.dbsize()));
}

/** The read that gives a key's content, by the type its name says it has. */
function typeByName(key: string): 'hash' | 'zset' | 'list' | 'string' {
  if (key.startsWith('rails:') || key.startsWith('tollgate:rsv:')) return 'hash';
  if (key.startsWith('tollgate:adjustments:')) return 'list';
  if (key.startsWith('user:') || key.startsWith('org:') || key.startsWith('tollgate:credits:')) return 'zset';
  return 'string';
}

/** Every key of a single Redis: its type and content (TTL apart), for a whole-keyspace comparison; a key of another type than its name says reads as WRONGTYPE. */
async function dump(client: Redis): Promise<Map<string, string>> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'COUNT', 5000);
    for (const key of batch) keys.add(key);
    cursor = next;
  } while (cursor !== '0');
  const all = [...keys];
  const out = new Map<string, string>();
  for (let i = 0; i < all.length; i += 5000) {
    const chunk = all.slice(i, i + 5000);
    const reads = client.pipeline();
    // The read its name calls for: a key of another type answers WRONGTYPE, which differs from any content.
    for (const key of chunk) {
      const type = typeByName(key);
      if (type === 'hash') reads.hgetall(key);
      else if (type === 'zset') reads.zrange(key, 0, '-1', 'WITHSCORES');
      else if (type === 'list') reads.lrange(key, 0, '-1');
      else reads.get(key);
    }
    const replies = (await reads.exec())!;
    chunk.forEach((key, index) => {
      const [error, value] = replies[index]!;
      const type = typeByName(key);
      const content = error !== null ? error.message : type === 'hash' ? Object.entries(value as Record<string, string>).sort() : value;
      out.set(key, `${type} ${JSON.stringify(content)}`);
    });
  }
  return out;
}

const timings: string[] = [];
const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
  const startedMs = performance.now();
  const result = await work();
  timings.push(`${label} ${((performance.now() - startedMs) / 1000).toFixed(1)} s`);
  return result;
};

beforeAll(async () => {
  console.log(`Redis Cluster (3 masters + 3 replicas) started in ${cluster().startupMs} ms`);
  [source, back] = await Promise.all([startRedisServer(), startRedisServer()]);
  sourceClient = new Redis(source.url);
  clusterClient = await cluster().client();
  await timed('seed', () => seed(sourceClient));
}, 300_000);

afterAll(async () => {
  console.log(`migrate.test.ts: ${timings.join(', ')}`);
  sourceClient?.disconnect();
  clusterClient?.disconnect();
  await Promise.all([source?.stop(), back?.stop()]);
});

describe('tollgate migrate --to cluster, 100,000 users', () => {
  it('copies every Tollgate key into its cluster name, spread over all three masters, and reports what it left out', async () => {
    const startSource = await sourceClient.dbsize();
    const run = await timed('to cluster', () => toCluster());
    expect([run.code, run.err]).toEqual([0, expect.any(String)]);
    const report = JSON.parse(run.out);
    timings.push(`(phases ${JSON.stringify(report.phaseMs)})`);
    expect(report.ok).toBe(true);
    for (const [kind, count] of Object.entries(EXPECTED)) expect(report.kinds[kind], kind).toEqual({ write: count, equal: 0, conflict: 0 });
    expect(report.written).toBe(EXPECTED_TOTAL);
    expect(report.expired).toBe(0);
    expect(report.leftOut).toEqual({ reservations: 1, journal: 1 });
    expect(report.unmapped.count).toBe(NOT_COPIED.unmapped.length);
    expect(report.unmapped.first.map((entry: { key: string }) => entry.key).sort()).toEqual([...NOT_COPIED.unmapped].sort());
    expect(report.otherKeys).toBe(1);
    expect(report.sourceKeys).toBe(startSource);
    // Every usage counter and credit ledger read, the two of them that had no home included.
    expect(report.verified).toBe(EXPECTED.usage + EXPECTED.credits + 2);
    const perMaster = await sizes();
    expect(perMaster.reduce((sum, n) => sum + n, 0)).toBe(EXPECTED_TOTAL);
    for (const size of perMaster) expect(size).toBeGreaterThan(EXPECTED_TOTAL / 5);
    expect(await sourceClient.dbsize()).toBe(startSource);
  }, 300_000);

  it('writes each key field for field, score for score, with request ids keeping their remaining TTL', async () => {
    const layout = CLUSTER_LAYOUT;
    for (let n = 0; n < 300; n += 1) {
      const i = (n * 7919) % LONE;
      const k = (n * 104_729) % MEMBERS;
      // A lone user: its directory entry holds every field.
      expect(await clusterClient.hgetall(layout.directoryKey(lone(i)))).toEqual(await sourceClient.hgetall(`rails:users:${lone(i)}`));
      // A member: its member hash holds every field (organization too), its directory only organization.
      expect(await clusterClient.hgetall(layout.userConfigKey(member(k), orgOf(k)))).toEqual(await sourceClient.hgetall(`rails:users:${member(k)}`));
      expect(await clusterClient.hgetall(layout.directoryKey(member(k)))).toEqual({ organization: orgOf(k) });
      expect(await clusterClient.zrange(layout.usageKey({ type: 'user', name: lone(i) }, null, 'geocoder_here', 'success_responses', MONTH), 0, '-1', 'WITHSCORES')).toEqual(
        await sourceClient.zrange(`user:${lone(i)}:geocoder_here:success_responses:${MONTH}`, 0, '-1', 'WITHSCORES'),
      );
      for (const metric of ['success_responses', 'total_requests'] as const) {
        expect(await clusterClient.zrange(layout.usageKey({ type: 'user', name: member(k) }, orgOf(k), 'geocoder_here', metric, MONTH), 0, '-1', 'WITHSCORES')).toEqual(
          await sourceClient.zrange(`user:${member(k)}:geocoder_here:${metric}:${MONTH}`, 0, '-1', 'WITHSCORES'),
        );
        expect(await clusterClient.zrange(layout.usageKey({ type: 'org', name: orgOf(k) }, orgOf(k), 'geocoder_here', metric, MONTH), 0, '-1', 'WITHSCORES')).toEqual(
          await sourceClient.zrange(`org:${orgOf(k)}:geocoder_here:${metric}:${MONTH}`, 0, '-1', 'WITHSCORES'),
        );
      }
      expect(await clusterClient.hgetall(layout.orgConfigKey(orgOf(k)))).toEqual(await sourceClient.hgetall(`rails:orgs:${orgOf(k)}`));
      expect(await clusterClient.zrange(layout.creditLedgerKey({ type: 'user', name: member(k) }, orgOf(k), 'geocoder_here', MONTH), 0, '-1', 'WITHSCORES')).toEqual(
        await sourceClient.zrange(`tollgate:credits:user:${member(k)}:geocoder_here:${MONTH}`, 0, '-1', 'WITHSCORES'),
      );
      expect(await clusterClient.zrange(layout.creditLedgerKey({ type: 'org', name: orgOf(k) }, orgOf(k), 'geocoder_here', MONTH), 0, '-1', 'WITHSCORES')).toEqual(
        await sourceClient.zrange(`tollgate:credits:org:${orgOf(k)}:geocoder_here:${MONTH}`, 0, '-1', 'WITHSCORES'),
      );
    }
    for (let i = 0; i < 1000; i += 97) {
      for (const [user, home] of [[lone(i), null], [member(i), orgOf(i)]] as const) {
        const from = `tollgate:request:${user}:r${i}`;
        const to = layout.requestIdKey(user, home, `r${i}`);
        expect(await clusterClient.get(to)).toBe(await sourceClient.get(from));
        const [sourceTtl, targetTtl] = [await sourceClient.pttl(from), await clusterClient.pttl(to)];
        // Never longer than the source's (but for the write's own trip to Redis), and not shortened by more than the run took.
        expect(targetTtl).toBeLessThanOrEqual(sourceTtl + 1000);
        expect(targetTtl).toBeGreaterThan(sourceTtl - 120_000);
      }
    }
    for (const [user, home] of [[lone(7), null], [member(7), orgOf(7)]] as const) {
      expect(await clusterClient.lrange(layout.adjustmentLogKey(user, home), 0, -1)).toEqual(await sourceClient.lrange(`tollgate:adjustments:${user}`, 0, '-1'));
    }
  });

  it('a re-run writes nothing: every key is skipped as already equal', async () => {
    const before = await sizes();
    const run = await timed('re-run', () => toCluster());
    expect(run.code).toBe(0);
    const report = JSON.parse(run.out);
    for (const [kind, count] of Object.entries(EXPECTED)) expect(report.kinds[kind], kind).toEqual({ write: 0, equal: count, conflict: 0 });
    expect(report.written).toBe(0);
    expect(await sizes()).toEqual(before);
  }, 300_000);

  it('--to carto from the cluster into a fresh Redis gives the original keyspace back, key for key', async () => {
    const run = await timed('to carto', () =>
      tollgate({ REDIS_CLUSTER: masters() }, '--json', 'migrate', '--to', 'carto', '--target', back.url),
    );
    expect(run.code, run.err).toBe(0);
    const report = JSON.parse(run.out);
    expect(report.unmapped.count).toBe(0);
    expect(report.written).toBe(EXPECTED_TOTAL - MEMBERS); // a member's directory entry and member hash merge into one hash
    const backClient = new Redis(back.url);
    try {
      const [original, returned] = await timed('compare', () => Promise.all([dump(sourceClient), dump(backClient)]));
      for (const key of [...NOT_COPIED.leftOut, ...NOT_COPIED.unmapped, ...NOT_COPIED.other]) expect(original.delete(key), key).toBe(true);
      expect(returned.size).toBe(original.size);
      let differing = 0;
      for (const [key, content] of original) if (returned.get(key) !== content) differing += 1;
      expect(differing).toBe(0);
      for (let i = 0; i < 1000; i += 111) {
        const key = `tollgate:request:${member(i)}:r${i}`;
        const [sourceTtl, backTtl] = [await sourceClient.pttl(key), await backClient.pttl(key)];
        expect(backTtl).toBeLessThanOrEqual(sourceTtl + 1000);
        expect(backTtl).toBeGreaterThan(sourceTtl - 120_000);
      }
    } finally {
      backClient.disconnect();
    }
  }, 300_000);
});

describe('tollgate migrate --to cluster: dry run and conflicts, a small keyspace (database 4) into the same cluster', () => {
  it('--dry-run writes nothing; a differing target key stops every write (DBSIZE and values per master); undone, the run finishes', async () => {
    const layout = CLUSTER_LAYOUT;
    const small = `${back.url}/4`;
    const from = new Redis(small);
    const run = (...extra: string[]): Promise<Run> =>
      tollgate({ REDIS_URL: small }, '--json', 'migrate', '--to', 'cluster', '--target-cluster', masters(), ...extra);
    try {
      await from.hset(`rails:orgs:corg`, { geocoding_quota: '50' });
      await from.zadd(`org:corg:geocoder_here:success_responses:${MONTH}`, 9, '01');
      for (let i = 0; i < 20; i += 1) {
        await from.hset(`rails:users:c${i}`, { geocoding_quota: String(i) });
        await from.zadd(`user:c${i}:geocoder_here:success_responses:${MONTH}`, i + 1, '01');
        await from.hset(`rails:users:cm${i}`, { organization: 'corg', soft_geocoding_limit: 'true' });
        await from.zadd(`user:cm${i}:geocoder_here:success_responses:${MONTH}`, i + 2, '03');
      }
      const keys = 2 + 20 * 2 + 20 * 3;
      const before = await sizes();

      const dry = await run('--dry-run');
      expect(dry.code).toBe(0);
      expect(dry.err).not.toContain('ERR_TOLLGATE');
      expect(JSON.parse(dry.out)).toMatchObject({ ok: true, dryRun: true, written: 0, conflicts: { count: 0 }, kinds: { users: { write: 60 }, usage: { write: 41 } } });
      expect(await sizes()).toEqual(before);

      const first = await run();
      expect(first.code, first.err).toBe(0);
      expect(JSON.parse(first.out)).toMatchObject({ ok: true, written: keys });
      expect((await sizes()).reduce((sum, n) => sum + n, 0)).toBe(before.reduce((sum, n) => sum + n, 0) + keys);

      // Three target keys lost, and an operator's edit: the member hash now differs from CARTO's.
      const missing = [layout.usageKey({ type: 'user', name: 'c3' }, null, 'geocoder_here', 'success_responses', MONTH), layout.directoryKey('c4'), layout.directoryKey('cm5')];
      for (const key of missing) expect(await clusterClient.del(key)).toBe(1);
      const edited = layout.userConfigKey('cm7', 'corg');
      await clusterClient.hset(edited, 'geocoding_quota', '777');
      const held = await sizes();

      const conflicted = await run('--dry-run');
      expect(conflicted.code).toBe(1);
      expect(conflicted.err).toContain(`[${ERROR_CODES.migrationConflict}]`);
      expect(JSON.parse(conflicted.out)).toMatchObject({ ok: false, code: ERROR_CODES.migrationConflict, conflicts: { count: 1, first: [edited] }, kinds: { users: { write: 2, conflict: 1 } } });

      const refused = await run();
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(edited);
      expect(JSON.parse(refused.out)).toMatchObject({ ok: false, written: 0, conflicts: { count: 1, first: [edited] } });
      // Nothing written: the same DBSIZE on every master, the three keys still absent, the edit intact.
      expect(await sizes()).toEqual(held);
      for (const key of missing) expect(await clusterClient.exists(key)).toBe(0);
      expect(await clusterClient.hgetall(edited)).toEqual({ organization: 'corg', soft_geocoding_limit: 'true', geocoding_quota: '777' });

      // Once the edit is undone, the run finishes the job: exactly the three missing keys.
      await clusterClient.hdel(edited, 'geocoding_quota');
      const finished = await run();
      expect(finished.code, finished.err).toBe(0);
      expect(JSON.parse(finished.out)).toMatchObject({ ok: true, written: 3, kinds: { users: { write: 2, equal: 58 } } });
      expect(await clusterClient.hgetall(layout.directoryKey('cm5'))).toEqual({ organization: 'corg' });
    } finally {
      await from.flushdb();
      from.disconnect();
    }
  });
});

describe('tollgate migrate, small keyspaces (databases 1-3 of a private Redis)', () => {
  const db = (n: number): string => `${back.url}/${n}`;

  it('--to carto sums a user\'s own counters and ledgers over every home it had, merges its adjustment logs, keeps the longest-lived request id', async () => {
    const layout = CLUSTER_LAYOUT;
    const from = new Redis(db(1));
    const to = new Redis(db(2));
    try {
      await from.hset(layout.directoryKey('ann'), { organization: 'acme' });
      await from.hset(layout.userConfigKey('ann', 'acme'), { organization: 'acme', geocoding_quota: '5', credits_spent_millicredits: '3' });
      await from.hset(layout.orgConfigKey('acme'), { geocoding_quota: '100' });
      await from.hset(layout.userConfigKey('ann', 'old'), { organization: 'old' }); // left behind by a move: no directory names it
      const usage = (home: string | null): string => layout.usageKey({ type: 'user', name: 'ann' }, home, 'geocoder_here', 'success_responses', MONTH);
      await from.zadd(usage(null), 1, '01', 2, '02');
      await from.zadd(usage('old'), 10, '02', 10, '03');
      await from.zadd(usage('acme'), 100, '03');
      const ledger = (home: string): string => layout.creditLedgerKey({ type: 'user', name: 'ann' }, home, 'geocoder_here', MONTH);
      await from.zadd(ledger('old'), 1500, '01');
      await from.zadd(ledger('acme'), 500, '01', 7, '04');
      await from.set(layout.requestIdKey('ann', 'old', 'r1'), 'old-copy', 'PX', 60_000);
      await from.set(layout.requestIdKey('ann', 'acme', 'r1'), 'new-copy', 'PX', HOUR_MS);
      await from.rpush(layout.adjustmentLogKey('ann', null), JSON.stringify({ at: '2026-11-02T00:00:00.000Z', units: 2 }), JSON.stringify({ at: '2026-11-01T00:00:00.000Z', units: 1 }));
      await from.rpush(layout.adjustmentLogKey('ann', 'acme'), JSON.stringify({ at: '2026-11-03T00:00:00.000Z', units: 3 }));

      const tty = Object.assign(sink(), {});
      (tty.stream as Writable & { isTTY?: boolean }).isTTY = true;
      const out = sink();
      const code = await runCli(['--json', 'migrate', '--to', 'carto', '--target', db(2)], { stdout: out.stream, stderr: tty.stream, env: { REDIS_URL: db(1) } });
      expect(code).toBe(0);
      // On a terminal: a bar per phase with done/total and the rate.
      expect(tty.text()).toMatch(/read source +\[[^\]]*\] \d+\/\d+ keys \| \d+ keys\/s/);
      const report = JSON.parse(out.text());
      expect(report.unmapped.first.map((entry: { key: string }) => entry.key).sort()).toEqual(
        [layout.requestIdKey('ann', 'old', 'r1'), layout.userConfigKey('ann', 'old')].sort(),
      );

      expect(await to.hgetall('rails:users:ann')).toEqual({ organization: 'acme', geocoding_quota: '5', credits_spent_millicredits: '3' });
      expect(await to.hgetall('rails:orgs:acme')).toEqual({ geocoding_quota: '100' });
      expect(await to.zrange(`user:ann:geocoder_here:success_responses:${MONTH}`, 0, '-1', 'WITHSCORES')).toEqual(['01', '1', '02', '12', '03', '110']);
      expect(await to.zrange(`tollgate:credits:user:ann:geocoder_here:${MONTH}`, 0, '-1', 'WITHSCORES')).toEqual(['04', '7', '01', '2000']);
      expect(await to.get('tollgate:request:ann:r1')).toBe('new-copy');
      expect(await to.pttl('tollgate:request:ann:r1')).toBeGreaterThan(HOUR_MS - 60_000);
      expect((await to.lrange('tollgate:adjustments:ann', 0, '-1')).map((entry) => JSON.parse(entry).units)).toEqual([3, 2, 1]);
    } finally {
      await Promise.all([from.flushdb(), to.flushdb()]);
      from.disconnect();
      to.disconnect();
    }
  });

  it('a Tollgate with keyLayout cluster decides on the migrated data as the CARTO one did: quota used, request ids replayed, API keys', async () => {
    const small = `${back.url}/5`;
    const from = new Redis(small);
    const apiKey = 'tg_migrated_key';
    const now = new Date();
    const month = `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    try {
      await from.hset('rails:users:tl', { geocoding_quota: '5', api_key_sha256: sha256Hex(apiKey) });
      await from.hset('rails:orgs:to', { geocoding_quota: '5' });
      await from.hset('rails:users:tm', { organization: 'to', api_key_sha256: sha256Hex(apiKey) });
      const carto = new Tollgate({ redis: small, timeoutMs: 5000 });
      for (let i = 0; i < 4; i += 1) {
        for (const user of ['tl', 'tm']) expect((await carto.consume({ user, kind: 'geocoding', apiKey, requestId: `a${i}` })).allowed).toBe(true);
      }
      await carto.close();
      const run = await tollgate({ REDIS_URL: small }, '--json', 'migrate', '--to', 'cluster', '--target-cluster', masters());
      expect(run.code, run.err).toBe(0);

      const engine = new Tollgate({ redis: clusterClient, keyLayout: 'cluster', timeoutMs: 5000 });
      try {
        for (const user of ['tl', 'tm']) {
          // A retry of a request admitted before the migration is answered from its migrated request id.
          const replay = await engine.consume({ user, kind: 'geocoding', apiKey, requestId: 'a2' });
          expect([replay.allowed, replay.replayed], user).toEqual([true, true]);
          // The quota of 5 held 4 migrated admissions: one more fits, then no more.
          expect((await engine.consume({ user, kind: 'geocoding', apiKey, requestId: 'b0' })).allowed, user).toBe(true);
          const denied = await engine.consume({ user, kind: 'geocoding', apiKey, requestId: 'b1' });
          expect([denied.allowed, denied.used], user).toEqual([false, 5]);
          await expect(engine.consume({ user, kind: 'geocoding', apiKey: 'wrong' })).rejects.toBeInstanceOf(AuthenticationError);
        }
        const layout = CLUSTER_LAYOUT;
        const own = (user: string, home: string | null): Promise<string[]> =>
          clusterClient.zrange(layout.usageKey({ type: 'user', name: user }, home, 'geocoder_here', 'success_responses', month), 0, '-1', 'WITHSCORES');
        expect((await own('tl', null))[1]).toBe('5');
        expect((await own('tm', 'to'))[1]).toBe('5');
        expect((await clusterClient.zrange(layout.usageKey({ type: 'org', name: 'to' }, 'to', 'geocoder_here', 'success_responses', month), 0, '-1', 'WITHSCORES'))[1]).toBe('5');
      } finally {
        await engine.close();
      }
    } finally {
      await from.flushdb();
      from.disconnect();
    }
  });

  it('refuses to report success when the source changed while it was copied', async () => {
    const from = new Redis(db(1));
    const to = new Redis(db(3));
    const writer = new Redis(db(1));
    try {
      for (let i = 0; i < 50; i += 1) {
        await from.hset(`rails:users:w${i}`, { geocoding_quota: '10' });
        await from.zadd(`user:w${i}:geocoder_here:success_responses:${MONTH}`, 1, '01');
      }
      let touched: Promise<unknown> | null = null;
      const error = await runMigration({
        source: { kind: 'single', url: db(1) },
        target: { kind: 'single', url: db(3) },
        to: 'cluster',
        dryRun: false,
        timeoutMs: 5000,
        // A writer still running: one admission lands while the target is checked.
        onProgress: ({ phase }) => {
          if (phase === 'check' && touched === null) touched = writer.zincrby(`user:w7:geocoder_here:success_responses:${MONTH}`, 1, '01');
        },
      }).catch((caught: unknown) => caught);
      await touched;
      expect(error).toBeInstanceOf(SourceChangedError);
      expect(error).toMatchObject({ code: ERROR_CODES.sourceChanged, changed: [`user:w7:geocoder_here:success_responses:${MONTH}`] });
      // Without the writer, the same run (over what it already wrote) is a conflict on exactly that key.
      const again = await tollgate({ REDIS_URL: db(1) }, 'migrate', '--to', 'cluster', '--target', db(3));
      expect(again.code).toBe(1);
      expect(again.out).toContain(CLUSTER_LAYOUT.usageKey({ type: 'user', name: 'w7' }, null, 'geocoder_here', 'success_responses', MONTH));
      expect(again.err).toContain(ERROR_CODES.migrationConflict);
    } finally {
      await Promise.all([from.flushdb(), to.flushdb()]);
      from.disconnect();
      to.disconnect();
      writer.disconnect();
    }
  });
});

describe('tollgate migrate, bad input', () => {
  it.each([
    [['migrate', '--to', 'sideways', '--target', 'redis://127.0.0.1:1'], ERROR_CODES.invalidArgument],
    [['migrate', '--target', 'redis://127.0.0.1:1'], ERROR_CODES.invalidArgument],
    [['migrate', '--to', 'cluster'], ERROR_CODES.invalidArgument],
    [['migrate', '--to', 'cluster', '--target', 'redis://127.0.0.1:1', '--target-cluster', '127.0.0.1:2'], ERROR_CODES.invalidArgument],
    [['migrate', '--to', 'cluster', '--target-cluster', '127.0.0.1:7000,redis://user:secret@10.0.0.1:7001'], ERROR_CODES.invalidOptions],
    [['migrate', '--to', 'cluster', '--target', 'http://127.0.0.1:6379'], ERROR_CODES.invalidOptions],
    [['migrate', '--to', 'carto', '--target-cluster', '127.0.0.1:7000'], ERROR_CODES.invalidArgument],
  ])('%j: exit 2 with %s, no secret echoed, nothing written', async (args, code) => {
    const before = await sourceClient.dbsize();
    const run = await tollgate({ REDIS_URL: source.url }, ...args);
    expect(run.code).toBe(2);
    expect(run.err).toContain(`[${code}]`);
    expect(run.err).not.toContain('secret');
    expect(run.out).toBe('');
    expect(await sourceClient.dbsize()).toBe(before);
  });
});

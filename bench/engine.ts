// Engine benchmark: consume, check and consume + settle against a raw EVALSHA quota script, at 128 calls in flight, on a private Redis.
import { Redis } from 'ioredis';
import { usageKey } from '../src/core/keys.js';
import { quotaKindSpec } from '../src/core/quota-kinds.js';
import { Tollgate } from '../src/index.js';
import { startPrivateRedis } from '../demo/src/private-server.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const USERS = 1000;

/** The smallest correct quota script: check a daily counter and count, one EVALSHA. */
const RAW_LUA = `
local used = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2])) or 0
if used + tonumber(ARGV[1]) > tonumber(ARGV[3]) then return 0 end
redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2])
return 1`;

interface Figures {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly nodeUsPerOp: number;
  readonly redisUsPerOp: number;
}

async function redisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const value = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return value('used_cpu_user') + value('used_cpu_sys');
}

/** Keeps IN_FLIGHT calls of `op` going for DURATION_MS and measures every call, and the CPU both sides spent. */
async function measure(admin: Redis, op: (i: number) => Promise<unknown>): Promise<Figures> {
  const latencies: number[] = [];
  let counter = 0;
  const redis0 = await redisCpuSeconds(admin);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + DURATION_MS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await op(counter++);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const redisS = (await redisCpuSeconds(admin)) - redis0;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    opsPerSecond: latencies.length / elapsedS,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    nodeUsPerOp: (cpu.user + cpu.system) / latencies.length,
    redisUsPerOp: (redisS * 1e6) / latencies.length,
  };
}

/** Every bench user's config: a quota no run reaches, a cycle starting on the 10th, key `key<u>`. */
const userFields = (u: number): Record<string, string> => ({ geocoding_quota: '1000000000', period_end_date: '2016-10-10 00:00:00 UTC', map_key: `key${u}` });

/** Users who used the service every day: their cycle's usage sets hold a member a day. */
const HISTORY_PREFIX = 'bench-history';
const GEOCODING = quotaKindSpec('geocoding');
/** Where a history user's geocoding usage is counted (no provider set: the default one). */
const SERVICE_TYPE = GEOCODING.serviceType(GEOCODING.defaultProvider);

/**
 * Gives each history user a success and an empty count on every day of last month and of this
 * month before today, as a customer who calls every day has: the decision sums every day of the
 * cycle, so what it costs grows over the month. The other users are on the first day of theirs.
 */
async function writeHistory(admin: Redis): Promise<void> {
  const now = new Date();
  const months = [new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)), new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))];
  const pipeline = admin.pipeline();
  for (let u = 0; u < USERS; u += 1) {
    const user = `${HISTORY_PREFIX}${u}`;
    pipeline.hset(`rails:users:${user}`, userFields(u));
    for (const month of months) {
      const yyyymm = month.toISOString().slice(0, 7).replace('-', '');
      const lastDay = month.getUTCMonth() === now.getUTCMonth() ? now.getUTCDate() - 1 : new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 0)).getUTCDate();
      for (let day = 1; day <= lastDay; day += 1) {
        const member = String(day).padStart(2, '0');
        for (const metric of GEOCODING.countedMetrics) pipeline.zadd(usageKey({ type: 'user', name: user }, SERVICE_TYPE, metric, yyyymm), 3, member);
      }
    }
  }
  await pipeline.exec();
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function main(): Promise<void> {
  const server = await startPrivateRedis();
  const admin = new Redis(server.url);
  const client = new Redis(server.url);
  try {
    const day = new Date().toISOString().slice(8, 10);
    const setup = admin.pipeline();
    for (let u = 0; u < USERS; u += 1) {
      setup.hset(`rails:users:bench${u}`, userFields(u));
    }
    await setup.exec();
    await writeHistory(admin);
    client.defineCommand('rawQuota', { numberOfKeys: 1, lua: RAW_LUA });
    const raw = (client as unknown as { rawQuota: (...args: Array<string | number>) => Promise<number> }).rawQuota.bind(client);
    const tollgate = new Tollgate({ redis: client, timeoutMs: 10_000 });
    const user = (i: number): string => `bench${i % USERS}`;

    const cases: ReadonlyArray<readonly [string, (i: number) => Promise<unknown>]> = [
      ['raw EVALSHA (check + count one counter)', (i) => raw(`raw:${user(i)}`, 1, day, 1e12)],
      ['tollgate consume', (i) => tollgate.consume({ user: user(i), kind: 'geocoding' })],
      ['tollgate consume with apiKey', (i) => tollgate.consume({ user: user(i), kind: 'geocoding', apiKey: `key${i % USERS}` })],
      ['tollgate consume, a month of history', (i) => tollgate.consume({ user: `${HISTORY_PREFIX}${i % USERS}`, kind: 'geocoding' })],
      ['tollgate check', (i) => tollgate.check({ user: user(i), kind: 'geocoding' })],
      [
        'tollgate consume + settle failed (refund)',
        async (i) => {
          const admission = await tollgate.consume({ user: user(i), kind: 'geocoding' });
          if (admission.allowed) await tollgate.settle(admission.reservation, 'failed');
        },
      ],
    ];
    for (const [, op] of cases) await measure(admin, op); // warm-up: connections, script cache, config cache
    const results = new Map<string, Figures[]>(cases.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const [name, op] of round % 2 === 0 ? cases : [...cases].reverse()) results.get(name)?.push(await measure(admin, op));
    }

    console.log(`engine benchmark: ${IN_FLIGHT} calls in flight on one connection, ${DURATION_MS} ms per run, ${ROUNDS} interleaved rounds (median), ${USERS} users`);
    console.log(['case'.padEnd(44), 'ops/s'.padStart(8), 'p50 ms'.padStart(7), 'p99 ms'.padStart(7), 'node µs/op'.padStart(11), 'redis µs/op'.padStart(12), 'vs raw'.padStart(7)].join(' '));
    const rawOps = median((results.get(cases[0]![0]) ?? []).map((f) => f.opsPerSecond));
    for (const [name] of cases) {
      const list = results.get(name) ?? [];
      const pick = (field: keyof Figures): number => median(list.map((f) => f[field]));
      console.log(
        [
          name.padEnd(44),
          pick('opsPerSecond').toFixed(0).padStart(8),
          pick('p50Ms').toFixed(2).padStart(7),
          pick('p99Ms').toFixed(2).padStart(7),
          pick('nodeUsPerOp').toFixed(1).padStart(11),
          pick('redisUsPerOp').toFixed(1).padStart(12),
          `${(pick('opsPerSecond') / rawOps).toFixed(2)}x`.padStart(7),
        ].join(' '),
      );
    }
  } finally {
    client.disconnect();
    admin.disconnect();
    await server.stop();
  }
}

await main();

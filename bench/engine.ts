// Engine benchmark: consume, check and consume + settle against a raw EVALSHA quota script, at 128 calls in flight, on a private Redis.
import { Redis } from 'ioredis';
import { Tollgate } from '../src/index.js';
import { startPrivateRedis } from '../demo/src/private-server.js';
import { engineCases, median, writeBenchUsers } from './engine-cases.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const USERS = 1000;

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

async function main(): Promise<void> {
  const server = await startPrivateRedis();
  const admin = new Redis(server.url);
  const client = new Redis(server.url);
  try {
    await writeBenchUsers(admin, USERS);
    const tollgate = new Tollgate({ redis: client, timeoutMs: 10_000 });
    const cases = engineCases(client, tollgate, USERS);
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

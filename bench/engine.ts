// Engine benchmark: Tollgate consume (+settle) against CARTO-style non-atomic check-then-count, in one run, on a private Redis.
import { Redis } from 'ioredis';
import { Tollgate } from '../src/index.js';
import { startPrivateRedis } from '../demo/src/private-server.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const USERS = 1000;

interface Figures {
  readonly name: string;
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Runs `op` from CONCURRENCY loops for DURATION_MS and measures every call. */
async function measure(name: string, op: (i: number) => Promise<unknown>): Promise<Figures> {
  const latencies: number[] = [];
  let counter = 0;
  const started = performance.now();
  const deadline = started + DURATION_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await op(counter++);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { name, ops: latencies.length, opsPerSecond: latencies.length / elapsedS, p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function main(): Promise<void> {
  const server = await startPrivateRedis();
  const client = new Redis(server.url);
  try {
    const month = new Date().toISOString().slice(0, 7).replace('-', '');
    const day = new Date().toISOString().slice(8, 10);
    for (let u = 0; u < USERS; u += 1) {
      await client.hset(`rails:users:bench${u}`, { geocoding_quota: '1000000000', period_end_date: '2016-10-10 00:00:00 UTC' });
    }
    const tollgate = new Tollgate({ redis: client, timeoutMs: 10_000 });
    const user = (i: number): string => `bench${i % USERS}`;

    // Warm up connections and the script cache.
    await measure('warm-up', (i) => tollgate.consume({ user: user(i), kind: 'geocoding' }));

    const results: Figures[] = [];
    // Baseline: what CARTO did per request, non-atomically: read config, read usage, then count.
    results.push(
      await measure('baseline: HGETALL + ZRANGE x2, then ZINCRBY x2 (not atomic)', async (i) => {
        const name = user(i);
        await client.hgetall(`rails:users:${name}`);
        await client
          .pipeline()
          .zrange(`user:${name}:geocoder_here:success_responses:${month}`, 0, '-1', 'WITHSCORES')
          .zrange(`user:${name}:geocoder_here:empty_responses:${month}`, 0, '-1', 'WITHSCORES')
          .exec();
        await client
          .pipeline()
          .zincrby(`user:${name}:geocoder_here:success_responses:${month}`, 1, day)
          .zincrby(`user:${name}:geocoder_here:total_requests:${month}`, 1, day)
          .exec();
      }),
    );
    results.push(await measure('tollgate: check', (i) => tollgate.check({ user: user(i), kind: 'geocoding' })));
    const uncached = new Tollgate({ redis: client, timeoutMs: 10_000, configCacheMs: 0 });
    results.push(await measure('tollgate: consume, config read every time (configCacheMs 0)', (i) => uncached.consume({ user: user(i), kind: 'geocoding' })));
    results.push(await measure('tollgate: consume (config cached 1 s, the default)', (i) => tollgate.consume({ user: user(i), kind: 'geocoding' })));
    results.push(
      await measure('tollgate: consume + settle', async (i) => {
        const admission = await tollgate.consume({ user: user(i), kind: 'geocoding' });
        if (admission.reservation) await tollgate.settle(admission.reservation, 'success');
      }),
    );

    const baseline = results[0]!;
    console.log(`engine benchmark: ${CONCURRENCY} concurrent callers, ${DURATION_MS} ms each, ${USERS} users, one private redis-server`);
    console.log(['case'.padEnd(64), 'ops/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'vs baseline'.padStart(12)].join(' '));
    for (const r of results) {
      console.log(
        [
          r.name.padEnd(64),
          r.opsPerSecond.toFixed(0).padStart(9),
          r.p50Ms.toFixed(2).padStart(8),
          r.p99Ms.toFixed(2).padStart(8),
          `${(r.opsPerSecond / baseline.opsPerSecond).toFixed(2)}x`.padStart(12),
        ].join(' '),
      );
    }
  } finally {
    client.disconnect();
    await server.stop();
  }
}

await main();

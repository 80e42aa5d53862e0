// Benchmark: a 30-day CSV usage report over 100,000 users, streamed from a private redis-server; prints time and peak memory.
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { Tollgate } from '../src/index.js';
import { planReport, reportRows, writeReport } from '../src/admin/reports.js';
import { startPrivateRedis } from '../demo/src/private-server.js';

const USERS = Number(process.env.BENCH_USERS ?? 100_000);
const SEED_BATCH = 2_000;
// "Today" for the report: a 30-day frame from 2026-01-12 to 2026-02-10 spans two month keys.
const NOW_MS = Date.UTC(2026, 1, 10, 12);

/** Per user: a config hash, and success/total counters on 5 days of each of two months; 1 in 10 has a credit ledger. */
async function seed(client: Redis): Promise<void> {
  for (let start = 0; start < USERS; start += SEED_BATCH) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(USERS, start + SEED_BATCH); i += 1) {
      const user = `bench-u${i}`;
      pipeline.hset(`rails:users:${user}`, 'geocoding_quota', '1000');
      for (const [month, days] of [['202601', ['20', '21', '22', '23', '24']], ['202602', ['01', '02', '03', '04', '05']]] as const) {
        const counts = days.flatMap((day, d) => [String(1 + ((i + d) % 17)), day]);
        pipeline.zadd(`user:${user}:geocoder_here:success_responses:${month}`, ...counts);
        pipeline.zadd(`user:${user}:geocoder_here:total_requests:${month}`, ...counts);
        if (i % 10 === 0) pipeline.zadd(`tollgate:credits:user:${user}:geocoder_here:${month}`, ...counts.map((v, k) => (k % 2 === 0 ? String(Number(v) * 40) : v)));
      }
    }
    await pipeline.exec();
  }
}

class CountingSink extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.bytes += chunk.length;
    callback();
  }
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const client = new Redis(redis.url);
  try {
    const seedStart = performance.now();
    await seed(client);
    const keys = await client.dbsize();
    console.log(`seeded ${USERS} users, ${keys} keys in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);

    global.gc?.();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakHeap = before.heapUsed;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakHeap = Math.max(peakHeap, now.heapUsed);
    }, 20);

    const tollgate = new Tollgate({ redis: client });
    const plan = planReport({ target: { all: true }, frame: '30days' }, NOW_MS);
    const sink = new CountingSink();
    const start = performance.now();
    const rows = await writeReport(reportRows(tollgate.redis, plan), 'csv', sink);
    const seconds = (performance.now() - start) / 1000;
    clearInterval(sampler);

    console.log(`30-day CSV report over ${USERS} users: ${rows} rows, ${mb(sink.bytes)} of CSV`);
    console.log(`time ${seconds.toFixed(2)} s (${Math.round(rows / seconds)} rows/s)`);
    console.log(`RSS before ${mb(before.rss)}, peak during report ${mb(peakRss)} (sampled every 20 ms)`);
    console.log(`heap used before ${mb(before.heapUsed)}, peak during report ${mb(peakHeap)}`);
    console.log(`process maxRSS over the whole run (seeding included) ${mb(process.resourceUsage().maxRSS * 1024)}`);
  } finally {
    client.disconnect();
    await redis.stop();
  }
}

await main();

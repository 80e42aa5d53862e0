// Benchmark: `tollgate migrate --to cluster` of CARTO keyspaces of growing size between two private redis-servers; prints time and the heap it holds per key.
import { Redis } from 'ioredis';
import { migrateKeyspace, type MigrationProgress } from '../src/redis/migrate.js';
import { startPrivateRedis } from '../demo/src/private-server.js';

/** Users per run; each has a config hash, 4 usage counters (2 metrics x 2 months), 1 in 10 an org and a credit ledger. */
const SIZES = (process.env.BENCH_USERS ?? '10000,20000,40000').split(',').map(Number);
const SEED_BATCH = 2_000;

async function seed(client: Redis, users: number): Promise<void> {
  for (let start = 0; start < users; start += SEED_BATCH) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(users, start + SEED_BATCH); i += 1) {
      const user = `bench-u${i}`;
      const org = i % 10 === 0 ? `bench-o${i % 1000}` : null;
      pipeline.hset(`rails:users:${user}`, { geocoding_quota: '1000', ...(org === null ? {} : { organization: org }) });
      if (org !== null) pipeline.hset(`rails:orgs:${org}`, 'geocoding_quota', '100000');
      for (const [month, days] of [['202601', ['20', '21', '22', '23', '24']], ['202602', ['01', '02', '03', '04', '05']]] as const) {
        const counts = days.flatMap((day, d) => [String(1 + ((i + d) % 17)), day]);
        pipeline.zadd(`user:${user}:geocoder_here:success_responses:${month}`, ...counts);
        pipeline.zadd(`user:${user}:geocoder_here:total_requests:${month}`, ...counts);
        if (org !== null) pipeline.zadd(`tollgate:credits:user:${user}:geocoder_here:${month}`, ...counts.map((v, k) => (k % 2 === 0 ? String(Number(v) * 40) : v)));
      }
    }
    await pipeline.exec();
  }
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function run(users: number): Promise<void> {
  const [from, to] = await Promise.all([startPrivateRedis(), startPrivateRedis()]);
  const source = new Redis(from.url);
  const target = new Redis(to.url);
  try {
    await seed(source, users);
    const keys = await source.dbsize();
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    };
    const sampler = setInterval(sample, 20);
    // What the read phase left live (the copy the run holds), collected once the check begins.
    let live = Number.NaN;
    const onProgress = ({ phase }: MigrationProgress): void => {
      if (phase === 'check' && Number.isNaN(live)) {
        global.gc?.();
        if (global.gc !== undefined) live = process.memoryUsage().heapUsed - before;
      }
      sample();
    };
    const started = performance.now();
    const report = await migrateKeyspace({ to: 'cluster', source, target, onProgress });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const held = peak - before;
    console.log(
      [
        String(users).padStart(7),
        String(keys).padStart(8),
        String(report.written).padStart(8),
        `${seconds.toFixed(1)} s`.padStart(8),
        `${Math.round(keys / seconds)}`.padStart(8),
        mb(held).padStart(10),
        `${(held / keys).toFixed(0)} B`.padStart(9),
        Number.isNaN(live) ? '(no gc)'.padStart(10) : mb(live).padStart(10),
        Number.isNaN(live) ? ''.padStart(9) : `${(live / keys).toFixed(0)} B`.padStart(9),
      ].join(' '),
    );
  } finally {
    source.disconnect();
    target.disconnect();
    await Promise.all([from.stop(), to.stop()]);
  }
}

console.log('migrate --to cluster, a CARTO keyspace into an empty Redis. Heap above the start: its peak (garbage included, sampled');
console.log('every 20 ms and at each progress step), and what is live once the source is read (after a full GC: the copy the run holds)');
console.log(['  users', '    keys', ' written', '    time', '  keys/s', ' peak heap', ' peak/key', ' live heap', ' live/key'].join(' '));
for (const users of SIZES) await run(users);

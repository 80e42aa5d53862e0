// Benchmark: the demo geocode endpoint with and without the quota guard, one run, req/s, p50/p99 and ratios.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Redis } from 'ioredis';
import { createDemoApp } from '../demo/src/app.js';
import { CitiesGazetteer } from '../demo/src/gazetteer.js';
import { DEFAULT_LIMITS, parseGeocodeQuery } from '../demo/src/inputs.js';
import { StraightLineIsolines } from '../demo/src/isolines.js';
import { Tollgate } from '../src/tollgate.js';
import { startRedisServer } from '../test/helpers/redis-server.js';

const USER = 'bench-user';
const KEY = 'bench-key';
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (options: { url: string; connections: number; duration: number }) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** In the server process: serve the geocode endpoint guarded (the demo app as is) or bare (same handler, no guard). */
async function serve(mode: 'guarded' | 'bare', redisUrl: string): Promise<void> {
  const gazetteer = CitiesGazetteer.load();
  let app: express.Express;
  if (mode === 'guarded') {
    const tollgate = new Tollgate({ redis: redisUrl });
    app = createDemoApp({ tollgate, geocoder: gazetteer, isolines: new StraightLineIsolines() }).app;
  } else {
    app = express();
    app.disable('x-powered-by');
    app.set('query parser', 'simple');
    app.get('/u/:username/api/v1/geocode', (req, res) => {
      const input = parseGeocodeQuery(req.query as Record<string, unknown>, DEFAULT_LIMITS);
      const places = gazetteer.search(input.q, input.limit);
      res.type('application/geo+json').json({
        type: 'FeatureCollection',
        query: input.q,
        features: places.map((place) => ({
          type: 'Feature',
          geometry: { type: 'Point', coordinates: [place.lon, place.lat] },
          properties: { name: place.name, country: place.country, population: place.population, geonames_id: place.id },
        })),
      });
    });
  }
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.send?.({ port: (server.address() as AddressInfo).port });
}

async function startServer(mode: 'guarded' | 'bare', redisUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', mode, redisUrl], { stdio: 'inherit' });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { url: `http://127.0.0.1:${message.port}/u/${USER}/api/v1/geocode?q=Madrid&api_key=${KEY}`, child };
}

async function measure(mode: 'guarded' | 'bare', redisUrl: string): Promise<AutocannonResult & { sent: number }> {
  const { url, child } = await startServer(mode, redisUrl);
  try {
    const warmup = await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_S });
    const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S });
    return { ...result, sent: warmup.requests.total + result.requests.total };
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

async function main(): Promise<void> {
  const redis = await startRedisServer();
  const admin = new Redis(redis.url);
  try {
    // A hard quota no run can reach: every request is admitted, counted and settled.
    await admin.hset(`rails:users:${USER}`, { map_key: KEY, geocoding_quota: '1000000000000', geocoder_provider: 'geonames' });
    console.log(`autocannon: ${CONNECTIONS} connections, ${WARMUP_S}s warm-up + ${DURATION_S}s per run, GET geocode?q=Madrid`);
    const bare = await measure('bare', redis.url);
    const guarded = await measure('guarded', redis.url);
    const sum = async (metric: string): Promise<number> => {
      let total = 0;
      for (const key of await admin.keys(`user:${USER}:*:${metric}:*`)) {
        const flat = await admin.zrange(key, 0, '-1', 'WITHSCORES');
        for (let i = 1; i < flat.length; i += 2) total += Number(flat[i]);
      }
      return total;
    };
    const [total, success, failed] = (await Promise.all(['total_requests', 'success_responses', 'failed_responses'].map(sum))) as [number, number, number];
    const row = (label: string, r: AutocannonResult): string =>
      `${label.padEnd(18)} ${r.requests.average.toFixed(0).padStart(8)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   non-2xx ${r.non2xx}   errors ${r.errors + r.timeouts}`;
    console.log(row('without guard', bare));
    console.log(row('with guard', guarded));
    const ratio = (a: number, b: number): string => (b === 0 ? 'n/a' : (a / b).toFixed(2));
    console.log(
      `ratio with/without: req/s ${ratio(guarded.requests.average, bare.requests.average)}, ` +
        `p50 ${ratio(guarded.latency.p50, bare.latency.p50)}, p99 ${ratio(guarded.latency.p99, bare.latency.p99)}`,
    );
    // autocannon abandons the requests in flight when a run ends: up to CONNECTIONS per run are
    // counted by Redis (as success, or refunded as failed) without autocannon counting an answer.
    console.log(
      `guarded runs: ${guarded.sent} answers seen by autocannon (warm-up included); Redis counted total_requests ${total} ` +
        `= success ${success} + failed ${failed} (difference ${total - guarded.sent}, at most ${2 * CONNECTIONS} in flight at run ends)`,
    );
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] as 'guarded' | 'bare', process.argv[4] as string);
} else {
  await main();
}

// Benchmark: the quota guard with and without metrics + logging, interleaved rounds on one machine, req/s and the ratio.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Redis } from 'ioredis';
import { combineObservers, decisionResult } from '../src/core/observer.js';
import { quotaGuard } from '../src/http/guard.js';
import { createLogger, loggingObserver, SILENT_LOGGER } from '../src/observability/logging.js';
import { createMetrics } from '../src/observability/metrics.js';
import { Tollgate } from '../src/tollgate.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { pino } from 'pino';

const USER = 'bench-user';
const KEY = 'bench-key';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 4);
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 1);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (options: { url: string; connections: number; duration: number }) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

type Mode = 'plain' | 'observed';

/** In a child process: the guard in front of a trivial handler, so the guard's own cost dominates. */
async function serve(mode: Mode, redisUrl: string): Promise<void> {
  let tollgate: Tollgate;
  let metricsText: (() => Promise<string>) | null = null;
  if (mode === 'observed') {
    // JSON lines through pino to /dev/null at info: what a production process pays, minus the disk.
    const logger = createLogger({ destination: pino.destination({ dest: '/dev/null', sync: false }) });
    const metrics = createMetrics();
    metricsText = () => metrics.registry.metrics();
    tollgate = new Tollgate({ redis: redisUrl, logger, observer: combineObservers(metrics.observer, loggingObserver(logger)) });
  } else {
    tollgate = new Tollgate({ redis: redisUrl, logger: SILENT_LOGGER });
  }
  const app = express();
  app.get('/u/:username/api/v1/geocode', quotaGuard({ tollgate, kind: 'geocoding' }), (_req, res) => void res.json({ ok: true }));
  app.get('/metrics', async (_req, res) => void res.type('text/plain').send(metricsText === null ? '' : await metricsText()));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.send?.({ port: (server.address() as AddressInfo).port });
}

async function startServer(mode: Mode, redisUrl: string): Promise<{ base: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', mode, redisUrl], { stdio: 'inherit' });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { base: `http://127.0.0.1:${message.port}`, child };
}

/** Nanoseconds per call of the observer hooks a request makes (decision, charge, settle, cache), without HTTP. */
function hookCost(): number {
  const logger = createLogger({ destination: pino.destination({ dest: '/dev/null', sync: false }) });
  const observer = combineObservers(createMetrics().observer, loggingObserver(logger));
  const calls = 300_000;
  const run = (): number => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i += 1) {
      observer.configCache(true);
      observer.decision({ mode: 'consume', kind: 'geocoding', serviceType: 'geocoder_here', result: decisionResult('within_quota'), seconds: 0.0004, user: USER });
      observer.charged({ kind: 'geocoding', serviceType: 'geocoder_here', units: 1 });
      observer.settled({ kind: 'geocoding', outcome: 'success', status: 'settled' });
    }
    return Number(process.hrtime.bigint() - started) / calls;
  };
  run();
  return run();
}

async function main(): Promise<void> {
  const redis = await startRedisServer();
  const admin = new Redis(redis.url);
  const servers: Array<{ mode: Mode; base: string; child: ChildProcess }> = [];
  try {
    await admin.hset(`rails:users:${USER}`, { map_key: KEY, geocoding_quota: '1000000000000' });
    for (const mode of ['plain', 'observed'] as const) servers.push({ mode, ...(await startServer(mode, redis.url)) });
    console.log(`observer hooks of one request (metrics + logging observer): ${hookCost().toFixed(0)} ns`);
    console.log(`autocannon: ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${WARMUP_S}s warm-up + ${DURATION_S}s per mode; shared machine: figures are indicative`);
    const totals: Record<Mode, number[]> = { plain: [], observed: [] };
    for (let round = 0; round < ROUNDS; round += 1) {
      // Alternate which mode goes first, so drift in the machine's load favours neither.
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const { mode, base } of order) {
        const url = `${base}/u/${USER}/api/v1/geocode?api_key=${KEY}`;
        await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_S });
        const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S });
        if (result.non2xx > 0 || result.errors > 0) console.log(`  ${mode}: ${result.non2xx} non-2xx, ${result.errors} errors`);
        totals[mode].push(result.requests.average);
        console.log(`round ${round + 1} ${mode.padEnd(9)} ${result.requests.average.toFixed(0).padStart(7)} req/s   p50 ${result.latency.p50} ms   p99 ${result.latency.p99} ms`);
      }
    }
    const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
    const ratios = totals.plain.map((plain, index) => totals.observed[index]! / plain);
    console.log(`mean req/s: without ${mean(totals.plain).toFixed(0)}, with metrics + logging ${mean(totals.observed).toFixed(0)}`);
    console.log(`ratio with/without: ${(mean(totals.observed) / mean(totals.plain)).toFixed(3)} (per round ${ratios.map((r) => r.toFixed(3)).join(', ')}); cost ${((1 - mean(totals.observed) / mean(totals.plain)) * 100).toFixed(1)} % of throughput (budget 3 %)`);
    const sorted = [...ratios].sort((x, y) => x - y);
    const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
    console.log(`median per-round ratio: ${median.toFixed(3)}`);
    // A saturated Node server spends about 1 / (req/s) of a core per request; the hooks' share of that
    // is the cost that does not drown in the machine's noise.
    const hooksNs = hookCost();
    const perRequestNs = 1e9 / mean(totals.plain);
    console.log(`hooks: ${hooksNs.toFixed(0)} ns of the ~${(perRequestNs / 1000).toFixed(0)} µs a request costs here = ${((hooksNs / perRequestNs) * 100).toFixed(2)} % of throughput`);
    const scrape = await (await fetch(`${servers[1]!.base}/metrics`)).text();
    const line = scrape.split('\n').find((entry) => entry.startsWith('tollgate_decisions_total{'));
    console.log(`observed server's scrape: ${line ?? 'no decisions counted'}`);
  } finally {
    for (const { child } of servers) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    admin.disconnect();
    await redis.stop();
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] as Mode, process.argv[4] as string);
} else {
  await main();
}

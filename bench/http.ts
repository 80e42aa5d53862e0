// Benchmark: the guarded path against a bare route and a one-EVALSHA reference, interleaved with wrk, CPU and commands per request.
import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../test/helpers/redis-server.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const USERS = Number(process.env.BENCH_USERS ?? 1000);
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** One compared design: a path template wrk fills with a random user and its key. */
interface Target {
  readonly name: string;
  readonly path: (user: string, key: string) => string;
  /** Served by the demo app's own server rather than the bench app. */
  readonly demo?: true;
}

const TARGETS: readonly Target[] = [
  { name: 'bare', path: (u, k) => `/bare/u/${u}/api/v1/thing?api_key=${k}` },
  { name: 'reference', path: (u, k) => `/reference/u/${u}/api/v1/thing?api_key=${k}` },
  { name: 'guard', path: (u, k) => `/guard/u/${u}/api/v1/thing?api_key=${k}` },
  { name: 'demo-bare', path: (u, k) => `/demo-bare/u/${u}/api/v1/geocode?q=Madrid&api_key=${k}` },
  { name: 'demo-guarded', path: (u, k) => `/u/${u}/api/v1/geocode?q=Madrid&api_key=${k}`, demo: true },
];

interface Sample {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly serverUsPerReq: number;
  readonly redisUsPerReq: number;
  readonly commandsPerReq: number;
  readonly redisCallsPerReq: number;
}

const users = Array.from({ length: USERS }, (_, i) => ({ user: `bench-u${i}`, key: `bench-key-${i}` }));

/** A wrk script that sends every request to a random user of the bench, with its key. */
function wrkScript(dir: string, target: Target): string {
  const paths = users.map(({ user, key }) => `"${target.path(user, key)}"`).join(',\n');
  const file = join(dir, `${target.name}.lua`);
  writeFileSync(
    file,
    `local paths = {\n${paths}\n}\nrequest = function()\n  return wrk.format("GET", paths[math.random(#paths)])\nend\n` +
      `done = function(summary, latency, requests)\n  io.write(string.format("TOLLGATE %d %d %d %d\\n", summary.requests, ` +
      `summary.errors.status, latency:percentile(50), latency:percentile(99)))\nend\n`,
  );
  return file;
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]); // utime + stime, after the command name
}

async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const value = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return value('used_cpu_user') + value('used_cpu_sys');
}

async function redisCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/calls=(\d+)/g)) calls += Number(match[1]);
  return calls;
}

async function serverCommands(child: ChildProcess): Promise<number> {
  child.send('commands');
  const [message] = (await once(child, 'message')) as [{ commands: number }];
  return message.commands;
}

async function run(target: Target, script: string, ports: { port: number; demoPort: number }, child: ChildProcess, admin: Redis): Promise<Sample> {
  const port = target.demo === true ? ports.demoPort : ports.port;
  const pid = child.pid as number;
  const [ticks0, redis0, calls0, commands0] = [cpuTicks(pid), await redisCpuSeconds(admin), await redisCalls(admin), await serverCommands(child)];
  const wrk = spawnSync('wrk', ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${DURATION_S}s`, '-s', script, `http://127.0.0.1:${port}`], {
    encoding: 'utf8',
  });
  const [ticks1, redis1, calls1, commands1] = [cpuTicks(pid), await redisCpuSeconds(admin), await redisCalls(admin), await serverCommands(child)];
  const line = /TOLLGATE (\d+) (\d+) (\d+) (\d+)/.exec(wrk.stdout);
  if (line === null) throw new Error(`wrk failed for ${target.name}: ${wrk.stderr || wrk.stdout}`);
  const [requests, non2xx, p50Us, p99Us] = line.slice(1).map(Number) as [number, number, number, number];
  // Less the measurement's own INFO commands counted in between (commandstats before, cpu after).
  const callsDuringRun = calls1 - calls0 - 2;
  return {
    rps: requests / DURATION_S,
    p50Ms: p50Us / 1000,
    p99Ms: p99Us / 1000,
    requests,
    non2xx,
    serverUsPerReq: (((ticks1 - ticks0) / CLOCK_TICKS_PER_S) * 1e6) / requests,
    redisUsPerReq: ((redis1 - redis0) * 1e6) / requests,
    commandsPerReq: (commands1 - commands0) / requests,
    redisCallsPerReq: Math.max(0, callsDuringRun) / requests,
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

async function main(): Promise<void> {
  if (spawnSync('wrk', ['--version']).error !== undefined) {
    console.error('bench:http needs wrk on the PATH (Debian: apt-get install wrk); autocannon compresses every ratio toward 0.9.');
    process.exit(2);
  }
  const redis = await startRedisServer();
  const admin = new Redis(redis.url);
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  let child: ChildProcess | undefined;
  try {
    const pipeline = admin.pipeline();
    for (const { user, key } of users) {
      pipeline.hset(`rails:users:${user}`, { map_key: key, geocoding_quota: '1000000000000', geocoder_provider: 'geonames' });
    }
    await pipeline.exec();
    child = fork(join(fileURLToPath(new URL('.', import.meta.url)), 'http-targets.ts'), [redis.url], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [ready] = (await once(child, 'message')) as [{ port: number; demoPort: number }];
    const scripts = new Map(TARGETS.map((target) => [target.name, wrkScript(dir, target)]));
    console.log(
      `wrk: ${THREADS} threads, ${CONNECTIONS} connections, ${DURATION_S}s per run, ${ROUNDS} interleaved rounds, ` +
        `${USERS} users picked at random; server, Redis and wrk share this machine (${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length} cores)`,
    );
    for (const target of TARGETS) await run(target, scripts.get(target.name) as string, ready, child, admin); // warm-up
    const samples = new Map<string, Sample[]>(TARGETS.map((target) => [target.name, []]));
    for (let round = 1; round <= ROUNDS; round += 1) {
      const order = round % 2 === 1 ? TARGETS : [...TARGETS].reverse();
      for (const target of order) {
        samples.get(target.name)?.push(await run(target, scripts.get(target.name) as string, ready, child, admin));
      }
      const line = TARGETS.map((target) => `${target.name} ${samples.get(target.name)?.at(-1)?.rps.toFixed(0)}`).join('  ');
      console.log(`round ${round}: req/s  ${line}`);
    }
    const summary = new Map(
      TARGETS.map((target) => {
        const list = samples.get(target.name) as Sample[];
        const pick = (field: keyof Sample): number => median(list.map((sample) => sample[field]));
        return [target.name, {
          rps: pick('rps'), p50Ms: pick('p50Ms'), p99Ms: pick('p99Ms'), serverUsPerReq: pick('serverUsPerReq'),
          redisUsPerReq: pick('redisUsPerReq'), commandsPerReq: pick('commandsPerReq'), redisCallsPerReq: pick('redisCallsPerReq'),
          non2xx: list.reduce((sum, sample) => sum + sample.non2xx, 0),
        }];
      }),
    );
    console.log('\nmedian of the rounds:');
    console.log('target         req/s   p50 ms  p99 ms  server µs/req  Redis µs/req  commands/req  Redis calls/req (in scripts too)  non-2xx');
    for (const [name, s] of summary) {
      console.log(
        `${name.padEnd(13)} ${s.rps.toFixed(0).padStart(6)}  ${s.p50Ms.toFixed(2).padStart(6)}  ${s.p99Ms.toFixed(2).padStart(6)}  ` +
          `${s.serverUsPerReq.toFixed(0).padStart(13)}  ${s.redisUsPerReq.toFixed(1).padStart(12)}  ${s.commandsPerReq.toFixed(2).padStart(12)}  ` +
          `${s.redisCallsPerReq.toFixed(1).padStart(32)}  ${String(s.non2xx).padStart(7)}`,
      );
    }
    const rps = (name: string): number => summary.get(name)?.rps ?? Number.NaN;
    const ratio = (a: string, b: string): string => (rps(a) / rps(b)).toFixed(2);
    const roundRatios = (a: string, b: string): number[] =>
      (samples.get(a) ?? []).map((sample, i) => sample.rps / ((samples.get(b) ?? [])[i]?.rps ?? Number.NaN));
    // Each round's two runs are seconds apart, so their ratio sees the same machine: on a shared
    // VM whose speed drifts between rounds, the median of these is the steadier figure.
    const line = (label: string, a: string, b: string): string => {
      const each = roundRatios(a, b);
      return `  ${label.padEnd(25)}${ratio(a, b)}   ${median(each).toFixed(2)}   [${each.map((value) => value.toFixed(2)).join(' ')}]`;
    };
    console.log('\nratios: of the median req/s, the median of the rounds\' ratios, each round\'s in brackets');
    console.log(line('guard / bare', 'guard', 'bare'));
    console.log(line('reference / bare', 'reference', 'bare'));
    console.log(line('guard / reference', 'guard', 'reference'));
    console.log(line('demo guarded / unguarded', 'demo-guarded', 'demo-bare'));
  } finally {
    child?.kill('SIGTERM');
    admin.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

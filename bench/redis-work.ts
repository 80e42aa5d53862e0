// Redis work per operation, counted by callgrind: the engine cases against the raw EVALSHA quota script, in instructions, which repeat run after run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Tollgate } from '../src/index.js';
import { startPrivateRedis } from '../demo/src/private-server.js';
import { engineCases, writeBenchUsers } from './engine-cases.js';

const OPS = Number(process.env.BENCH_OPS ?? 1000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 16);
const USERS = 100;

function hasCommand(command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs `op` for operations `first` to `first + count - 1`, `inFlight` at a time. */
async function runOps(op: (i: number) => Promise<unknown>, first: number, count: number, inFlight: number): Promise<void> {
  let next = first;
  const end = first + count;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < end) await op(next++);
    }),
  );
}

/** Instructions redis-server executed between the last zeroing and now: a dump, read back. */
function dumpInstructions(pid: number, dir: string): number {
  const before = new Set(readdirSync(dir));
  execFileSync('callgrind_control', ['--dump', String(pid)], { stdio: 'ignore' });
  const dump = readdirSync(dir).find((file) => !before.has(file));
  if (dump === undefined) throw new Error('callgrind wrote no dump');
  const total = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dump), 'utf8'))?.[1];
  if (total === undefined) throw new Error(`no instruction total in ${dump}`);
  return Number(total);
}

async function main(): Promise<void> {
  if (!hasCommand('valgrind') || !hasCommand('callgrind_control')) {
    console.error('bench:redis-work needs valgrind (Debian package valgrind): apt-get install -y valgrind');
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-callgrind-'));
  const server = await startPrivateRedis({
    wrapper: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(dir, 'callgrind.out.%p')}`],
    readyTimeoutMs: 120_000,
  });
  const admin = new Redis(server.url);
  const client = new Redis(server.url);
  try {
    const pid = server.pid;
    if (pid === undefined) throw new Error('valgrind did not start');
    await writeBenchUsers(admin, USERS);
    const tollgate = new Tollgate({ redis: client, timeoutMs: 60_000 });
    const cases = engineCases(client, tollgate, USERS);
    const perOp = new Map<string, number>();
    for (const [name, op] of cases) {
      // Warm-up: the script cache, each user's config and plan, the day's reservation buckets.
      await runOps(op, 0, 3 * USERS, IN_FLIGHT);
      execFileSync('callgrind_control', ['--zero', String(pid)], { stdio: 'ignore' });
      await runOps(op, 3 * USERS, OPS, IN_FLIGHT);
      perOp.set(name, dumpInstructions(pid, dir) / OPS);
    }

    console.log(`Redis work per operation: redis-server ${redisVersion()} under callgrind, ${OPS} operations a case, ${IN_FLIGHT} in flight on one connection, ${USERS} users`);
    console.log('Instructions repeat from run to run whatever else the machine runs. They are redis-server\'s own (user space):');
    console.log('the kernel\'s part of each command (socket reads and writes) is not in them, so throughput ratios (bench:engine) stay closer to 1.');
    console.log(['case'.padEnd(44), 'instructions/op'.padStart(16), 'x raw'.padStart(7)].join(' '));
    const raw = perOp.get(cases[0]![0])!;
    for (const [name] of cases) {
      const work = perOp.get(name)!;
      console.log([name.padEnd(44), Math.round(work).toLocaleString('en-US').padStart(16), `${(work / raw).toFixed(2)}x`.padStart(7)].join(' '));
    }
  } finally {
    client.disconnect();
    admin.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function redisVersion(): string {
  return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
}

await main();

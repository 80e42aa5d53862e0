// redis-server processes in a temp dir, for the cluster and Sentinel helpers: spawn, wait until serving, kill, clean up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './redis-server.js';

/** One redis-server (or `redis-server --sentinel`) this test process started. */
export interface RedisProcess {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** The process id (for a detached server, what another process stops it by). */
  readonly pid: number;
  /** Whether the process is still running. */
  running(): boolean;
  /** Sends `signal` (default SIGKILL: no shutdown save, no goodbye to replicas) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A temp dir for a group of processes; `remove()` deletes it. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A free loopback port that is not in `taken` (ports chosen for one group must differ before any binds). */
export async function freePortNotIn(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}

/** A client for probes and admin commands that fails at once instead of retrying. */
export function probeClient(port: number): Redis {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  return client;
}

/** Runs one command against 127.0.0.1:`port` on a fresh connection; rejects if it cannot. */
export async function command(port: number, name: string, ...args: (string | number)[]): Promise<unknown> {
  const client = probeClient(port);
  try {
    await client.connect();
    return await client.call(name, ...args.map(String));
  } finally {
    client.disconnect();
  }
}

/**
 * Polls `probe` every `everyMs` until it answers true (a probe that throws answers false);
 * throws after `timeoutMs`, or at once with what `fatal` returns once that is not undefined.
 */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  options: { timeoutMs?: number; everyMs?: number; fatal?: () => Error | undefined } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = options.fatal?.();
    if (failure !== undefined) throw failure;
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Spawns `redis-server <args>` (the args carry the port) and waits until it answers PING.
 * Its log goes to `<dir>/<port>.log` for post-mortems; nothing is persisted unless `args` say so.
 * `detached`: in its own process group and not waited for, so it outlives this process.
 */
export async function spawnRedis(port: number, dir: string, args: readonly string[], options: { detached?: boolean } = {}): Promise<RedisProcess> {
  const detached = options.detached ?? false;
  const child = spawn('redis-server', [...args, '--logfile', join(dir, `${port}.log`)], { cwd: dir, stdio: 'ignore', detached });
  if (detached) child.unref();
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const process: RedisProcess = {
    port,
    address: `127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    running: () => !exited(child),
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (exited(child)) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
  try {
    await waitFor(`redis-server on port ${port}`, async () => (await command(port, 'PING')) === 'PONG', {
      timeoutMs: 10_000,
      fatal: () => spawnError ?? (exited(child) ? new Error(`redis-server on port ${port} exited (see ${join(dir, `${port}.log`)})`) : undefined),
    });
  } catch (error) {
    await process.kill();
    throw error;
  }
  return process;
}

/** Kills every process of a group (SIGKILL: these hold no data worth saving) and removes its dir. */
export async function stopAll(processes: readonly RedisProcess[], dir: { remove(): Promise<void> }): Promise<void> {
  await Promise.all(processes.map((process) => process.kill('SIGKILL')));
  await dir.remove();
}

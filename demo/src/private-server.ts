// Starts a throwaway redis-server on loopback: the demo's fallback when no Redis answers, and the Redis of tests and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A redis-server this process started, and how to stop it. */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** The process started: redis-server, or the `wrapper` running it. */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM) and resolves once it has exited. */
  stop(): Promise<void>;
}

/** Options of {@link startPrivateRedis}. */
export interface PrivateRedisOptions {
  /** The redis-server executable. Default `redis-server` from PATH. */
  readonly binary?: string;
  /** A fixed port (for a restart on the same address); default a free one the OS picks. */
  readonly port?: number;
  /** Extra redis-server arguments; they override the defaults (no persistence). */
  readonly args?: readonly string[];
  /** How long to wait for the server to answer. Default 10 s. */
  readonly readyTimeoutMs?: number;
  /** A command to run redis-server under, with its arguments (`['valgrind', '--tool=callgrind']`). Default none. */
  readonly wrapper?: readonly string[];
}

/** A free TCP port on loopback: the OS picks one, released just before redis-server binds it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether a Redis at `url` serves commands within `timeoutMs`. DBSIZE, unlike PING, is
 * refused while a server still loads its data, so a restarted server counts only once usable.
 */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // a refused connection is an answer here: "no"
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG' && (await probe.dbsize()) >= 0;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * Starts redis-server bound to 127.0.0.1 with no persistence (unless `args` say otherwise)
 * and waits until it serves. On a free port, a port taken between choosing and binding is
 * retried on another.
 */
export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const attempts = options.port === undefined ? 5 : 1;
  const deadlineMs = options.readyTimeoutMs ?? 10_000;
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const port = options.port ?? (await freePort());
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.args ?? [])];
    const [command, ...commandArgs] = [...(options.wrapper ?? []), options.binary ?? 'redis-server', ...args] as [string, ...string[]];
    const child = spawn(command, commandArgs, { stdio: 'ignore' });
    child.once('error', () => undefined); // a missing binary shows as an exit code below
    const url = `redis://127.0.0.1:${port}`;
    const started = Date.now();
    while (Date.now() - started < deadlineMs && child.exitCode === null && child.signalCode === null) {
      if (await redisAnswers(url, 200)) return { url, port, pid: child.pid, stop: () => stopChild(child) };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await stopChild(child);
  }
  throw new Error(options.port === undefined ? 'could not start redis-server on a free port' : `could not start redis-server on port ${options.port}`);
}

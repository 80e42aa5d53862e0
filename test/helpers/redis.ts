// Gives each test file a real Redis: REDIS_URL, else testcontainers when Docker is reachable, else a private redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';

/** A Redis a test file may use. `owned` servers were started by the tests and may be flushed. */
export interface TestRedis {
  readonly url: string;
  readonly owned: boolean;
  stop(): Promise<void>;
}

/** A free TCP port on loopback (the OS picks one; we release it just before redis-server binds it). */
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

async function waitForPing(url: string, child: ChildProcess | null, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < deadlineMs) {
    if (child !== null && child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {}); // refused connections are expected until the server is up
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Redis at ${url} did not answer within ${deadlineMs} ms`);
}

/** Starts `redis-server` on a free loopback port with no persistence. */
export async function startRedisServer(extraArgs: string[] = []): Promise<TestRedis & { port: number }> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...extraArgs],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(url, child);
    } catch {
      child.kill('SIGKILL');
      continue; // the port was taken between freePort() and bind: try another
    }
    return {
      url,
      port,
      owned: true,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  }
  throw new Error('could not start redis-server on a free port');
}

function dockerReachable(): boolean {
  if (process.env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
}

async function startContainer(): Promise<TestRedis | null> {
  try {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').start();
    return { url: container.getConnectionUrl(), owned: true, stop: async () => void (await container.stop()) };
  } catch {
    return null;
  }
}

/** The Redis for one test file, chosen as described in the README's Testing section. */
export async function startTestRedis(): Promise<TestRedis> {
  const external = process.env.REDIS_URL;
  if (external) return { url: external, owned: false, stop: async () => {} };
  if (dockerReachable()) {
    const container = await startContainer();
    if (container !== null) return container;
  }
  return startRedisServer();
}

/** Registers beforeAll/afterAll for a test file and returns accessors for its Redis. */
export function useTestRedis(): { url: () => string; client: () => Redis; owned: () => boolean } {
  let redis: TestRedis | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('test Redis not started');
    return value;
  };
  return { url: () => need(redis).url, client: () => need(client), owned: () => need(redis).owned };
}

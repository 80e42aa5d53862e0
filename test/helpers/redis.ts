// Gives each test file a real Redis: REDIS_URL, else testcontainers when Docker is reachable, else a private redis-server.
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedisServer, type TestRedis } from './redis-server.js';

export { freePort, startRedisServer, type TestRedis } from './redis-server.js';

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

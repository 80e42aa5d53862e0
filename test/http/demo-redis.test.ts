// The demo's private Redis keeps usage across a restart (AOF), and a Redis that lost its data gets the demo accounts back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { DEMO_ACCOUNTS, demoRedisArgs } from '../../demo/src/bootstrap.js';
import { startDemo, type DemoService } from '../../demo/src/service.js';
import { freePort, startPrivateRedis, type PrivateRedis } from '../../demo/src/private-server.js';
import { call } from './support.js';

/** Monthly geocoding use of the demo org, as the demo's own quota endpoint reports it. */
async function orgUse(service: DemoService): Promise<number> {
  const reply = await call(`${service.url}/u/${DEMO_ACCOUNTS.user}/api/v1/quota?api_key=${service.accounts.user.key}`);
  expect(reply.status).toBe(200);
  return (reply.body.geocoding as { monthly_use: number }).monthly_use;
}

async function geocode(service: DemoService): Promise<number> {
  const reply = await call(`${service.url}/u/${DEMO_ACCOUNTS.user}/api/v1/geocode?q=Lyon&api_key=${service.accounts.user.key}`);
  await service.demo.guards.geocoding.drain();
  return reply.status;
}

describe("the demo's private Redis", () => {
  it('uses an append-only file in the directory it names; usage survives a restart; a wiped Redis gets the demo accounts back', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-demo-aof-'));
    const messages: string[] = [];
    const service = await startDemo({
      port: 0,
      host: '127.0.0.1',
      defaultRedisUrl: `redis://127.0.0.1:${await freePort()}`,
      redisDataDir: dataDir,
      log: (m) => messages.push(m),
    });
    const port = Number(new URL(service.redis.url).port);
    let restarted: PrivateRedis | null = null;
    const restart = async (wipe: boolean): Promise<void> => {
      await (restarted?.stop() ?? service.redis.stop());
      if (wipe) rmSync(join(dataDir, 'appendonlydir'), { recursive: true, force: true });
      restarted = await startPrivateRedis({ port, args: demoRedisArgs(dataDir) });
      await vi.waitFor(() => expect(service.tollgate.redis.status).toBe('ready'), { timeout: 10_000, interval: 50 });
    };
    try {
      expect(service.redis).toMatchObject({ private: true, dataDir });
      expect(messages.join('\n')).toContain(`append-only file (appendfsync everysec) in ${dataDir}`);
      const admin = new Redis(service.redis.url);
      expect(await admin.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await admin.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
      admin.disconnect();

      expect(await geocode(service)).toBe(200);
      expect(await geocode(service)).toBe(200);
      expect(await orgUse(service)).toBe(2);

      // A restart of redis-server (a clean SIGTERM writes the AOF out): usage and accounts are still there.
      await restart(false);
      expect(await orgUse(service)).toBe(2);
      expect(await geocode(service)).toBe(200);
      expect(await orgUse(service)).toBe(3);

      // A restart with its data gone: the accounts come back with the keys the banner printed.
      await restart(true);
      await vi.waitFor(async () => expect(await geocode(service)).toBe(200), { timeout: 5000, interval: 100 });
      expect(messages.join('\n')).toContain('Redis had lost the demo accounts');
      expect(await orgUse(service)).toBe(1);

      // Wiped under a running server (FLUSHALL): /readyz notices and seeds again.
      const flusher = new Redis(service.redis.url);
      await flusher.flushall();
      flusher.disconnect();
      const ready = await call(`${service.url}/readyz`);
      expect(ready).toMatchObject({ status: 200, body: { status: 'ready', redis: 'up', demoAccounts: 'reseeded' } });
      expect((await call(`${service.url}/readyz`)).body).toMatchObject({ demoAccounts: 'present' });
      expect(await geocode(service)).toBe(200);
    } finally {
      await service.shutdown();
      await (restarted as PrivateRedis | null)?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

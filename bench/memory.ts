// Benchmark: Redis memory a stream of admitted requests leaves beside the usage sorted sets, during and after the settle window.
import { Redis } from 'ioredis';
import { Tollgate, keyLayout, type KeyLayoutName } from '../src/index.js';
import { startPrivateRedis } from '../demo/src/private-server.js';
import { SLOT_MS } from '../src/redis/reservations.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 100_000);
const USERS = Number(process.env.BENCH_USERS ?? 1000);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 5000);
const IN_FLIGHT = 128;
/** `carto` (default) or `cluster`: the key layout, on the same single private Redis. */
const LAYOUT = keyLayout((process.env.BENCH_KEY_LAYOUT ?? 'carto') as KeyLayoutName);

async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** MEMORY USAGE of every key matching `pattern`, added up. */
async function keyBytes(client: Redis, pattern: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      keys += 1;
      bytes += Number((await client.memory('USAGE', key)) ?? 0);
    }
  } while (cursor !== '0');
  return { keys, bytes };
}

async function main(): Promise<void> {
  const server = await startPrivateRedis();
  const admin = new Redis(server.url);
  try {
    const setup = admin.pipeline();
    for (let u = 0; u < USERS; u += 1) setup.hset(LAYOUT.directoryKey(`mem${u}`), { geocoding_quota: '1000000000', map_key: `key${u}` });
    await setup.exec();
    const before = await usedMemory(admin);
    const tollgate = new Tollgate({ redis: server.url, keyLayout: LAYOUT.name, reservationTtlMs: WINDOW_MS, timeoutMs: Math.min(10_000, WINDOW_MS) });
    let next = 0;
    const started = performance.now();
    // What the guard sends for a successful request: one authenticated consume, no settle.
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < REQUESTS) {
          const i = next++;
          const admission = await tollgate.consume({ user: `mem${i % USERS}`, kind: 'geocoding', apiKey: `key${i % USERS}` });
          if (!admission.allowed) throw new Error('a request was refused');
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const during = await usedMemory(admin);
    const usage = await keyBytes(admin, 'user:*');
    const reservations = await keyBytes(admin, 'tollgate:rsv:*');
    const perRequest = reservations.bytes / REQUESTS;
    console.log(`${REQUESTS} admitted requests over ${USERS} users in ${seconds.toFixed(1)} s, settle window ${WINDOW_MS} ms, ${LAYOUT.name} key layout, one private redis-server`);
    console.log(`during the window: used_memory +${((during - before) / 1e6).toFixed(2)} MB; usage sorted sets ${usage.keys} keys, ${(usage.bytes / 1e6).toFixed(2)} MB;`);
    console.log(`  reservations ${reservations.keys} bucket hashes, ${(reservations.bytes / 1e6).toFixed(2)} MB = ${perRequest.toFixed(1)} bytes per request`);
    // Buckets expire at the end of their one-minute slot plus the window.
    const waitMs = SLOT_MS + WINDOW_MS + 2000;
    console.log(`waiting ${(waitMs / 1000).toFixed(0)} s for the settle window to pass...`);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    const after = await usedMemory(admin);
    const left = await keyBytes(admin, 'tollgate:*');
    console.log(
      `after the window: used_memory +${((after - before) / 1e6).toFixed(2)} MB over the start, of which usage sorted sets ` +
        `${(usage.bytes / 1e6).toFixed(2)} MB; Tollgate's own keys left: ${left.keys} (${left.bytes} bytes); ` +
        `beyond the usage sets: ${((after - before - usage.bytes) / 1e6).toFixed(3)} MB`,
    );
    for (const rate of [1000, 50_000]) {
      const defaultWindowMs = 5 * 60_000;
      // A reservation lives from its admission to the end of its slot plus the window: on average window + slot / 2.
      const live = rate * ((defaultWindowMs + SLOT_MS / 2) / 1000);
      console.log(`steady state at ${rate} requests/s with the default 5 min window: ~${live.toLocaleString('en')} live reservations, ~${((live * perRequest) / 1e6).toFixed(0)} MB`);
    }
    await tollgate.close();
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

await main();

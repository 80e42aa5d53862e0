// What waitForReplicas costs: consume with and without WAIT for one replica's acknowledgement, on a private master + replica.
import { Redis } from 'ioredis';
import { Tollgate } from '../src/index.js';
import { startPrivateRedis } from '../demo/src/private-server.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const USERS = 1000;

interface Figures {
  readonly name: string;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Runs `op` from `concurrency` loops for DURATION_MS and measures every call. */
async function measure(name: string, concurrency: number, op: (i: number) => Promise<unknown>): Promise<Figures> {
  const latencies: number[] = [];
  let counter = 0;
  const started = performance.now();
  const deadline = started + DURATION_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await op(counter++);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { name, opsPerSecond: latencies.length / elapsedS, p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function replicaInSync(replica: Redis): Promise<boolean> {
  return /master_link_status:up/.test(await replica.info('replication'));
}

async function main(): Promise<void> {
  // No 5 s pause before the replica's first full sync.
  const master = await startPrivateRedis({ args: ['--repl-diskless-sync-delay', '0'] });
  // Loads the master's data straight into memory: no dump.rdb left in the working directory.
  const replicaServer = await startPrivateRedis({ args: ['--replicaof', '127.0.0.1', String(master.port), '--repl-diskless-load', 'on-empty-db'] });
  const replica = new Redis(replicaServer.url);
  const clients = Array.from({ length: 4 }, () => new Redis(master.url));
  try {
    while (!(await replicaInSync(replica))) await new Promise((resolve) => setTimeout(resolve, 50));
    for (let u = 0; u < USERS; u += 1) {
      await clients[0]!.hset(`rails:users:bench${u}`, { geocoding_quota: '1000000000', period_end_date: '2016-10-10 00:00:00 UTC' });
    }
    const user = (i: number): string => `bench${i % USERS}`;
    const gate = (client: Redis, waitForReplicas: number): Tollgate => new Tollgate({ redis: client, timeoutMs: 10_000, waitForReplicas });
    const plain = gate(clients[0]!, 0);
    const waiting = gate(clients[0]!, 1);
    const waitingSpread = clients.map((client) => gate(client, 1));
    const plainSpread = clients.map((client) => gate(client, 0));

    await measure('warm-up', CONCURRENCY, (i) => plain.consume({ user: user(i), kind: 'geocoding' }));
    const rows: [Figures, Figures][] = [];
    for (const concurrency of [1, CONCURRENCY]) {
      rows.push([
        await measure(`consume, 1 connection, ${concurrency} concurrent`, concurrency, (i) => plain.consume({ user: user(i), kind: 'geocoding' })),
        await measure(`  + waitForReplicas: 1`, concurrency, (i) => waiting.consume({ user: user(i), kind: 'geocoding' })),
      ]);
    }
    rows.push([
      await measure(`consume, 4 connections, ${CONCURRENCY} concurrent`, CONCURRENCY, (i) => plainSpread[i % 4]!.consume({ user: user(i), kind: 'geocoding' })),
      await measure(`  + waitForReplicas: 1`, CONCURRENCY, (i) => waitingSpread[i % 4]!.consume({ user: user(i), kind: 'geocoding' })),
    ]);

    console.log(`replica-wait benchmark: ${DURATION_MS} ms per case, ${USERS} users, a private master + 1 replica on loopback`);
    console.log(['case'.padEnd(44), 'ops/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'vs no WAIT'.padStart(11)].join(' '));
    for (const [base, withWait] of rows) {
      for (const r of [base, withWait]) {
        console.log(
          [
            r.name.padEnd(44),
            r.opsPerSecond.toFixed(0).padStart(9),
            r.p50Ms.toFixed(2).padStart(8),
            r.p99Ms.toFixed(2).padStart(8),
            `${(r.opsPerSecond / base.opsPerSecond).toFixed(2)}x`.padStart(11),
          ].join(' '),
        );
      }
    }
  } finally {
    for (const client of clients) client.disconnect();
    replica.disconnect();
    await replicaServer.stop();
    await master.stop();
  }
}

await main();

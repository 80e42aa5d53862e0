// Failover figures: served vs counted vs quota when a Sentinel group changes master under load, with and without the guards against loss.
import type { Redis } from 'ioredis';
import { closeRedis, openRedis } from '../src/redis/topology.js';
import { failoverUnderLoad, type FailoverLoad, type LoadFigures } from '../test/helpers/failover-load.js';
import { uniqueName } from '../test/helpers/fixtures.js';
import { startSentinelGroup } from '../test/helpers/redis-sentinel.js';

const QUOTA = Number(process.env.BENCH_QUOTA ?? 6000);

interface Scenario {
  readonly name: string;
  readonly trigger: 'failover' | 'kill';
  readonly options?: FailoverLoad['options'];
  /** Sets min-replicas-to-write 1 / min-replicas-max-lag 1 on both data servers first. */
  readonly minReplicas?: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'SENTINEL FAILOVER', trigger: 'failover' },
  { name: 'SENTINEL FAILOVER, min-replicas-to-write 1', trigger: 'failover', minReplicas: true },
  { name: 'SENTINEL FAILOVER, waitForReplicas 1', trigger: 'failover', options: { waitForReplicas: 1 } },
  { name: 'master SIGKILLed', trigger: 'kill' },
];

/** Runs one scenario on a fresh group (1 master, 1 replica, 3 sentinels); a message when the load could not finish. */
async function run(scenario: Scenario): Promise<LoadFigures | string> {
  const group = await startSentinelGroup();
  const sentinels = group.sentinels.map((sentinel) => ({ host: '127.0.0.1', port: sentinel.port }));
  const client = (): Redis => openRedis({ kind: 'sentinel', sentinels, name: group.masterName }, { timeoutMs: 2000 }) as Redis;
  const admin = client();
  try {
    if (scenario.minReplicas) {
      for (const server of group.servers) {
        const direct = openRedis({ kind: 'single', url: `redis://${server.address}` }, { timeoutMs: 1000 });
        await direct.config('SET', 'min-replicas-to-write', '1', 'min-replicas-max-lag', '1');
        await closeRedis(direct);
      }
    }
    return await failoverUnderLoad({
      group,
      admin,
      client,
      user: uniqueName('bench'),
      quota: QUOTA,
      trigger: scenario.trigger,
      ...(scenario.options ? { options: scenario.options } : {}),
    });
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await closeRedis(admin);
    await group.stop();
  }
}

async function main(): Promise<void> {
  console.log(`failover benchmark: 20 workers consume 1 unit every 10 ms (at most 2,000/s) against a hard quota of ${QUOTA}; the master changes after ${QUOTA / 4} are served`);
  console.log(['scenario'.padEnd(44), 'served'.padStart(7), 'counted'.padStart(8), 'lost'.padStart(6), 'after'.padStart(6), 'refused'.padStart(8), 'switch ms'.padStart(10), 'drain ms'.padStart(9)].join(' '));
  for (const scenario of SCENARIOS) {
    const result = await run(scenario);
    if (typeof result === 'string') {
      console.log(`${scenario.name.padEnd(44)} did not finish: ${result}`);
      continue;
    }
    const refused = Object.values(result.errors).reduce((sum, count) => sum + count, 0);
    console.log(
      [
        scenario.name.padEnd(44),
        String(result.served).padStart(7),
        String(result.counted).padStart(8),
        String(result.served - result.counted).padStart(6),
        String(result.servedAfterFailover).padStart(6),
        String(refused).padStart(8),
        String(result.failoverMs).padStart(10),
        String(result.drainMs).padStart(9),
      ].join(' '),
    );
  }
  console.log('lost = served - counted: units callers were told they could use that the surviving master never counted.');
  console.log('after = of those served, served by the workers once every sentinel named the new master.');
  console.log('refused = consumes answered ERR_TOLLGATE_REDIS_UNAVAILABLE during the run (nothing charged for them).');
}

await main();
// A sentinel-built ioredis client closed while it is re-resolving the master can leave its
// failover detector's sentinel connections retrying (an ioredis race); do not wait for them.
process.exit(0);

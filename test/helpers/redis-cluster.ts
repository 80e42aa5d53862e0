// A real Redis Cluster for tests: 3 masters + 3 replicas from the redis-server binary on free loopback ports.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, type ClusterOptions } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { command, freePortNotIn, makeTempDir, spawnRedis, stopAll, waitFor, type RedisProcess } from './redis-processes.js';

const run = promisify(execFile);

/** A running cluster this test process started. */
export interface TestCluster {
  /** Every node, masters and replicas, as `redis-cli --cluster create` was given them. */
  readonly nodes: readonly RedisProcess[];
  /** `redis://127.0.0.1:<port>` of every node: seed URLs for a cluster client. */
  readonly urls: readonly string[];
  /** Wall time from the first spawn to `cluster_state:ok` on every node with every replica in sync. */
  readonly startupMs: number;
  /**
   * A new ioredis Cluster client on the seeds, resolved once it has the slot map (the caller
   * closes it). Commands sent earlier can meet "Connection is closed" while ioredis swaps its
   * seed connections for the ones the slot map names.
   */
  client(options?: ClusterOptions): Promise<Cluster>;
  /** Kills every node and removes their dirs. */
  stop(): Promise<void>;
}

function infoField(info: string, field: string): string | undefined {
  return info.split('\r\n').find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1);
}

/**
 * Starts 6 `redis-server --cluster-enabled yes` nodes (no persistence, node timeout 2 s),
 * joins them with `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`, and
 * resolves once every node reports `cluster_state:ok`, knows all 6 nodes, and every
 * replica's link to its master is up. Each node's cluster bus gets its own free port
 * (`cluster-port`), so nothing depends on port+10000 being free.
 */
export async function startRedisCluster(): Promise<TestCluster> {
  const startedMs = performance.now();
  const dir = await makeTempDir('tollgate-cluster-');
  const taken = new Set<number>();
  const nodes: RedisProcess[] = [];
  try {
    const ports = await Promise.all(Array.from({ length: 6 }, async () => [await freePortNotIn(taken), await freePortNotIn(taken)] as const));
    nodes.push(
      ...(await Promise.all(
        ports.map(([port, busPort]) =>
          spawnRedis(port, dir.path, [
            '--port', String(port), '--bind', '127.0.0.1', '--dir', dir.path,
            '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
            '--cluster-port', String(busPort), '--cluster-node-timeout', '2000',
            '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0',
          ]),
        ),
      )),
    );
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => node.address), '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 30_000,
    });
    await waitFor('cluster_state:ok on every node', async () => {
      for (const node of nodes) {
        const info = String(await command(node.port, 'CLUSTER', 'INFO'));
        if (infoField(info, 'cluster_state') !== 'ok' || infoField(info, 'cluster_known_nodes') !== '6') return false;
        const replication = String(await command(node.port, 'INFO', 'replication'));
        if (infoField(replication, 'role') === 'slave' && infoField(replication, 'master_link_status') !== 'up') return false;
      }
      return true;
    }, { timeoutMs: 30_000 });
  } catch (error) {
    await stopAll(nodes, dir);
    throw error;
  }
  const startupMs = Math.round(performance.now() - startedMs);
  return {
    nodes,
    urls: nodes.map((node) => `redis://${node.address}`),
    startupMs,
    client: async (options) => {
      const client = new Cluster(nodes.map((node) => ({ host: '127.0.0.1', port: node.port })), { ...options, lazyConnect: true });
      await client.connect();
      return client;
    },
    stop: () => stopAll(nodes, dir),
  };
}

/** Registers beforeAll/afterAll starting one cluster for the whole test file; returns an accessor. */
export function useRedisCluster(): () => TestCluster {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => cluster?.stop());
  return () => {
    if (cluster === undefined) throw new Error('test cluster not started');
    return cluster;
  };
}

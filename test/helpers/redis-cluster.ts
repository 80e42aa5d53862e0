// A real Redis Cluster for tests: 3 masters + 3 replicas from the redis-server binary on free loopback ports.
import { Cluster, type ClusterOptions } from 'ioredis';
import { Tollgate, type TollgateOptions } from '../../src/index.js';
import { afterAll, beforeAll } from 'vitest';
import { startClusterNodes } from './cluster-nodes.js';
import type { RedisProcess } from './redis-processes.js';

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

/**
 * Starts 6 `redis-server --cluster-enabled yes` nodes (no persistence, node timeout 2 s),
 * joins them with `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`, and
 * resolves once every node reports `cluster_state:ok`, knows all 6 nodes, and every
 * replica's link to its master is up (cluster-nodes.ts). Each node's cluster bus gets its own
 * free port (`cluster-port`), so nothing depends on port+10000 being free.
 */
export async function startRedisCluster(): Promise<TestCluster> {
  const started = await startClusterNodes({ masters: 3, replicasPerMaster: 1 });
  const { nodes } = started;
  return {
    nodes,
    urls: nodes.map((node) => `redis://${node.address}`),
    startupMs: started.startupMs,
    client: async (options) => {
      const client = new Cluster(nodes.map((node) => ({ host: '127.0.0.1', port: node.port })), { ...options, lazyConnect: true });
      await client.connect();
      return client;
    },
    stop: () => started.stop(),
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

/** A file's cluster, one Cluster client on it and a Tollgate with the cluster layout, all set up before the file's tests. */
export interface ClusterTollgate {
  readonly cluster: () => TestCluster;
  readonly client: Cluster;
  readonly tollgate: Tollgate;
}

/**
 * Registers beforeAll/afterAll for a cluster (useRedisCluster), a client on it and a Tollgate
 * with the cluster key layout and `options`; afterAll closes the Tollgate and the client.
 */
export function useClusterTollgate(options: Omit<TollgateOptions, 'redis' | 'keyLayout'> = {}): ClusterTollgate {
  const cluster = useRedisCluster();
  let client: Cluster | undefined;
  let tollgate: Tollgate | undefined;
  beforeAll(async () => {
    console.log(`Redis Cluster (3 masters + 3 replicas) started in ${cluster().startupMs} ms`);
    client = await cluster().client();
    tollgate = new Tollgate({ ...options, redis: client, keyLayout: 'cluster' });
  });
  afterAll(async () => {
    await tollgate?.close();
    client?.disconnect();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('cluster Tollgate not set up yet');
    return value;
  };
  return {
    cluster,
    get client() {
      return started(client);
    },
    get tollgate() {
      return started(tollgate);
    },
  };
}

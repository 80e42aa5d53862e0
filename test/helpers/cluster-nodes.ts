// Redis Cluster nodes from the redis-server binary, without vitest: N masters with R replicas each, for tests, benchmarks and `npm run cluster:start`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { command, freePortNotIn, makeTempDir, spawnRedis, stopAll, waitFor, type RedisProcess } from './redis-processes.js';

const run = promisify(execFile);

/** Options of {@link startClusterNodes}. */
export interface ClusterNodesOptions {
  /** Masters; at least 1. One master is given all 16,384 slots itself (`redis-cli --cluster create` wants 3). */
  readonly masters: number;
  /** Replicas per master. Default 0; with one master, 0 only. */
  readonly replicasPerMaster?: number;
  /** Client ports, masters first (`masters * (1 + replicasPerMaster)` of them); default free loopback ports. */
  readonly ports?: readonly number[];
  /** Servers in their own process group, left running when this process exits (stop them by pid). */
  readonly detached?: boolean;
  /** Prefix of the temp dir holding logs and `nodes-<port>.conf`. */
  readonly dirPrefix?: string;
}

/** A running cluster this process started. */
export interface ClusterNodes {
  /** Every node, masters first, as `redis-cli --cluster create` was given them. */
  readonly nodes: readonly RedisProcess[];
  /** The nodes that were made masters. */
  readonly masters: readonly RedisProcess[];
  /** The temp dir of logs and node configs. */
  readonly dir: string;
  /** Wall time from the first spawn to `cluster_state:ok` on every node with every replica in sync. */
  readonly startupMs: number;
  /** Kills every node (SIGKILL) and removes the dir. */
  stop(): Promise<void>;
}

/** One `field:value` line of an INFO or CLUSTER INFO reply. */
export function infoField(info: string, field: string): string | undefined {
  return info.split('\r\n').find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1);
}

/**
 * Starts `redis-server --cluster-enabled yes` nodes on loopback (no persistence, node timeout
 * 2 s, each cluster bus on its own free port), joins them, and resolves once every node reports
 * `cluster_state:ok`, knows every node, and every replica's link to its master is up.
 */
export async function startClusterNodes(options: ClusterNodesOptions): Promise<ClusterNodes> {
  const replicas = options.replicasPerMaster ?? 0;
  const total = options.masters * (1 + replicas);
  if (!Number.isInteger(options.masters) || options.masters < 1) throw new Error('masters must be a positive integer');
  if (options.masters === 1 && replicas !== 0) throw new Error('a one-master cluster is built without replicas');
  if (options.ports !== undefined && options.ports.length !== total) throw new Error(`${total} ports needed, ${options.ports.length} given`);
  const startedMs = performance.now();
  const dir = await makeTempDir(options.dirPrefix ?? 'tollgate-cluster-');
  const taken = new Set<number>(options.ports ?? []);
  const nodes: RedisProcess[] = [];
  try {
    const ports = await Promise.all(
      Array.from({ length: total }, async (_, i) => [options.ports?.[i] ?? (await freePortNotIn(taken)), await freePortNotIn(taken)] as const),
    );
    nodes.push(
      ...(await Promise.all(
        ports.map(([port, busPort]) =>
          spawnRedis(
            port,
            dir.path,
            [
              '--port', String(port), '--bind', '127.0.0.1', '--dir', dir.path,
              '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
              '--cluster-port', String(busPort), '--cluster-node-timeout', '2000',
              // A lone master never learns its address from a peer's MEET; without this it announces "" in CLUSTER SLOTS.
              '--cluster-announce-ip', '127.0.0.1',
              '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0',
            ],
            { detached: options.detached ?? false },
          ),
        ),
      )),
    );
    if (options.masters === 1) {
      await command(nodes[0]!.port, 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
    } else {
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => node.address), '--cluster-replicas', String(replicas), '--cluster-yes'], {
        timeout: 30_000,
      });
    }
    await waitFor(
      'cluster_state:ok on every node',
      async () => {
        for (const node of nodes) {
          const info = String(await command(node.port, 'CLUSTER', 'INFO'));
          if (infoField(info, 'cluster_state') !== 'ok' || infoField(info, 'cluster_known_nodes') !== String(total)) return false;
          const replication = String(await command(node.port, 'INFO', 'replication'));
          if (infoField(replication, 'role') === 'slave' && infoField(replication, 'master_link_status') !== 'up') return false;
        }
        return true;
      },
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    await stopAll(nodes, dir);
    throw error;
  }
  return {
    nodes,
    masters: nodes.slice(0, options.masters),
    dir: dir.path,
    startupMs: Math.round(performance.now() - startedMs),
    stop: () => stopAll(nodes, dir),
  };
}

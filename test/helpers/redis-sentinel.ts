// A real Sentinel group for tests: 1 master, 1 replica and 3 sentinels from the redis-server binary on free loopback ports.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { command, freePortNotIn, makeTempDir, spawnRedis, stopAll, waitFor, type RedisProcess } from './redis-processes.js';

/** The master name the sentinels monitor. */
export const SENTINEL_MASTER_NAME = 'tollgate-test';

/** A running Sentinel group this test process started. */
export interface TestSentinelGroup {
  readonly masterName: string;
  /** The two data nodes; which one is master changes with failovers. */
  readonly servers: readonly RedisProcess[];
  readonly sentinels: readonly RedisProcess[];
  /** Wall time from the first spawn until every sentinel knows the replica and the other sentinels. */
  readonly startupMs: number;
  /** The port of the master as the first sentinel reports it now. */
  masterPort(): Promise<number>;
  /** A new ioredis client that finds the master through the sentinels (the caller closes it). */
  client(options?: Partial<RedisOptions>): Redis;
  /**
   * `SENTINEL FAILOVER <name>`, then waits until every sentinel names the other server as
   * master and it answers ROLE master. Resolves with the new master's port. The old master
   * keeps running and accepting writes until the sentinels turn it into a replica (their
   * next INFO probe, up to 10 s later); {@link waitForReplica} waits for that.
   */
  failover(): Promise<number>;
  /**
   * SIGKILLs the master (no goodbye, no last replication), then waits until every sentinel
   * names the replica as master (down-after 1 s, then the vote) and it answers ROLE master.
   * Resolves with the new master's port. The killed server stays down.
   */
  killMaster(): Promise<number>;
  /** Waits until the server that is not master is a replica in sync with the master. */
  waitForReplica(): Promise<void>;
  /** Kills every process and removes the temp dir. */
  stop(): Promise<void>;
}

function infoField(info: string, field: string): string | undefined {
  return info.split('\r\n').find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1);
}

/** A Sentinel reply of flat `[field, value, ...]` arrays as objects. */
function records(reply: unknown): Record<string, string>[] {
  return (reply as string[][]).map((flat) => {
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
    return record;
  });
}

async function sentinelMasterPort(sentinelPort: number, name: string): Promise<number> {
  const [, port] = (await command(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
  return Number(port);
}

async function roleOf(port: number): Promise<string> {
  return infoField(String(await command(port, 'INFO', 'replication')), 'role') ?? '';
}

async function replicaInSync(port: number): Promise<boolean> {
  const info = String(await command(port, 'INFO', 'replication'));
  return infoField(info, 'role') === 'slave' && infoField(info, 'master_link_status') === 'up';
}

/**
 * Starts a master and a replica (no persistence), waits for the replica to sync, then starts
 * 3 sentinels (quorum 2, down-after 1 s, failover-timeout 10 s) and waits until each knows
 * the replica and the 2 other sentinels, so a failover can be voted at once.
 */
export async function startSentinelGroup(): Promise<TestSentinelGroup> {
  const startedMs = performance.now();
  const name = SENTINEL_MASTER_NAME;
  const dir = await makeTempDir('tollgate-sentinel-');
  const taken = new Set<number>();
  const processes: RedisProcess[] = [];
  // No 5 s wait before a full sync (the default): replicas and demoted masters sync at once.
  const data = ['--bind', '127.0.0.1', '--dir', dir.path, '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'];
  try {
    const masterPort = await freePortNotIn(taken);
    const replicaPort = await freePortNotIn(taken);
    processes.push(await spawnRedis(masterPort, dir.path, ['--port', String(masterPort), ...data]));
    processes.push(await spawnRedis(replicaPort, dir.path, ['--port', String(replicaPort), ...data, '--replicaof', '127.0.0.1', String(masterPort)]));
    await waitFor('the replica to sync', () => replicaInSync(replicaPort));
    const sentinelPorts = [await freePortNotIn(taken), await freePortNotIn(taken), await freePortNotIn(taken)];
    const sentinels = await Promise.all(
      sentinelPorts.map(async (port) => {
        // A sentinel rewrites its config file as it learns the topology: one writable file each.
        const config = join(dir.path, `sentinel-${port}.conf`);
        await writeFile(
          config,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir.path}`,
            `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
            `sentinel down-after-milliseconds ${name} 1000`,
            `sentinel failover-timeout ${name} 10000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        return spawnRedis(port, dir.path, [config, '--sentinel']);
      }),
    );
    processes.push(...sentinels);
    await waitFor('every sentinel to know the replica and the other sentinels', async () => {
      for (const sentinel of sentinels) {
        const replicas = records(await command(sentinel.port, 'SENTINEL', 'REPLICAS', name));
        const peers = records(await command(sentinel.port, 'SENTINEL', 'SENTINELS', name));
        if (replicas.length !== 1 || replicas[0]!.flags !== 'slave' || peers.length !== 2) return false;
      }
      return true;
    });
  } catch (error) {
    await stopAll(processes, dir);
    throw error;
  }
  const startupMs = Math.round(performance.now() - startedMs);
  const [master, replica, ...sentinels] = processes as [RedisProcess, RedisProcess, ...RedisProcess[]];
  const servers = [master, replica];
  const sentinelAddresses = sentinels.map((sentinel) => ({ host: '127.0.0.1', port: sentinel.port }));
  return {
    masterName: name,
    servers,
    sentinels,
    startupMs,
    masterPort: () => sentinelMasterPort(sentinels[0]!.port, name),
    client: (options = {}) => new Redis({ sentinels: sentinelAddresses, name, ...options }),
    failover: async () => {
      const oldPort = await sentinelMasterPort(sentinels[0]!.port, name);
      const newPort = servers.find((server) => server.port !== oldPort)!.port;
      await command(sentinels[0]!.port, 'SENTINEL', 'FAILOVER', name);
      await waitFor('the failover to complete', async () => {
        for (const sentinel of sentinels) if ((await sentinelMasterPort(sentinel.port, name)) !== newPort) return false;
        return (await roleOf(newPort)) === 'master';
      }, { timeoutMs: 30_000 });
      return newPort;
    },
    killMaster: async () => {
      const oldPort = await sentinelMasterPort(sentinels[0]!.port, name);
      const newPort = servers.find((server) => server.port !== oldPort)!.port;
      await servers.find((server) => server.port === oldPort)!.kill('SIGKILL');
      await waitFor('the sentinels to promote the replica', async () => {
        for (const sentinel of sentinels) if ((await sentinelMasterPort(sentinel.port, name)) !== newPort) return false;
        return (await roleOf(newPort)) === 'master';
      }, { timeoutMs: 30_000 });
      return newPort;
    },
    waitForReplica: async () => {
      const masterPort = await sentinelMasterPort(sentinels[0]!.port, name);
      const replicaPort = servers.find((server) => server.port !== masterPort)!.port;
      await waitFor('the old master to become an in-sync replica', () => replicaInSync(replicaPort), { timeoutMs: 30_000 });
    },
    stop: () => stopAll(processes, dir),
  };
}

/** Registers beforeAll/afterAll starting one Sentinel group for the whole test file; returns an accessor. */
export function useSentinelGroup(): () => TestSentinelGroup {
  let group: TestSentinelGroup | undefined;
  beforeAll(async () => {
    group = await startSentinelGroup();
  }, 60_000);
  afterAll(async () => group?.stop());
  return () => {
    if (group === undefined) throw new Error('test Sentinel group not started');
    return group;
  };
}

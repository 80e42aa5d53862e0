// Operating a test Redis Cluster like an operator would: find a slot's master and replicas, move one slot (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), wait for a promoted replica.
import { command, probeClient, waitFor, type RedisProcess } from './redis-processes.js';

/** What {@link ClusterOperations.moveSlot} did. */
export interface SlotMove {
  readonly from: RedisProcess;
  readonly to: RedisProcess;
  /** Keys MIGRATE carried over. */
  readonly keys: number;
  /** From SETSLOT IMPORTING to the last SETSLOT NODE. */
  readonly ms: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One line of CLUSTER NODES: `<id> <ip:port@bus> <flags> <master> ... <slots...>`. */
interface NodeLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly masterId: string;
  readonly slots: readonly string[];
}

function parseNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.trim().split(' ');
      return {
        id: parts[0] as string,
        port: Number((parts[1] as string).split('@')[0]?.split(':')[1]),
        flags: (parts[2] as string).split(','),
        masterId: parts[3] as string,
        slots: parts.slice(8),
      };
    });
}

/** Whether a CLUSTER NODES slot entry (`5461`, `0-5460`) covers `slot`; `[...]` entries are migrations, not ownership. */
function covers(entry: string, slot: number): boolean {
  if (entry.startsWith('[')) return false;
  const [from, to = from] = entry.split('-').map(Number) as [number, number?];
  return slot >= from && slot <= to;
}

function infoField(info: string, field: string): string | undefined {
  return info.split('\r\n').find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1);
}

/** What a test can do to a running cluster (see {@link clusterOperations}). */
export interface ClusterOperations {
  /** The hash slot of `key` (CLUSTER KEYSLOT). */
  slotOf(key: string): Promise<number>;
  /** A node's cluster id (CLUSTER MYID). */
  idOf(node: RedisProcess): Promise<string>;
  /** The master serving `slot`, as the first running node's CLUSTER SLOTS says. */
  masterOf(slot: number): Promise<RedisProcess>;
  /** The running masters, as the first running node's CLUSTER NODES says. */
  masters(): Promise<RedisProcess[]>;
  /** The running replicas of `master` whose link to it is up. */
  replicasOf(master: RedisProcess): Promise<RedisProcess[]>;
  /**
   * Who owns `slot` in every running node's CLUSTER NODES (and whether one still shows it
   * migrating or importing): one entry per node, `owner` being the owner's node id.
   */
  ownersInNodes(slot: number): Promise<{ node: RedisProcess; owner: string | undefined; moving: boolean }[]>;
  /**
   * Moves exactly `slot` from its master to `to`, as `redis-cli --cluster reshard` does for a
   * slot: SETSLOT IMPORTING on `to`, SETSLOT MIGRATING on the source, MIGRATE ... KEYS in
   * batches of `keysPerMigrate` (pausing `pauseMs` between batches, so the slot stays split
   * for a while), then, after `holdMs` with every key on `to` while the source still answers
   * for the slot (ASK), SETSLOT NODE on `to`, the source and every other master.
   */
  moveSlot(slot: number, to: RedisProcess, options?: { keysPerMigrate?: number; pauseMs?: number; holdMs?: number }): Promise<SlotMove>;
  /**
   * Resolves once every running node reports `cluster_state:ok` and every running node's
   * CLUSTER SLOTS names the same running master for `slot` (after a kill: the promoted replica).
   */
  waitUntilServed(slot: number, timeoutMs?: number): Promise<RedisProcess>;
}

/** The operations on a test cluster's nodes (those still running answer; killed ones are skipped). */
export function clusterOperations(cluster: { readonly nodes: readonly RedisProcess[] }): ClusterOperations {
  const { nodes } = cluster;
  const running = (): RedisProcess[] => nodes.filter((node) => node.running());
  const byPort = (port: number): RedisProcess => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (node === undefined) throw new Error(`no test node on port ${port}`);
    return node;
  };
  const anyNode = (): RedisProcess => {
    const node = running()[0];
    if (node === undefined) throw new Error('no running node');
    return node;
  };
  const nodesOf = async (node: RedisProcess): Promise<NodeLine[]> => parseNodes(String(await command(node.port, 'CLUSTER', 'NODES')));
  const slotMaster = async (node: RedisProcess, slot: number): Promise<number | undefined> => {
    const ranges = (await command(node.port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    return ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
  };
  const idOf = async (node: RedisProcess): Promise<string> => String(await command(node.port, 'CLUSTER', 'MYID'));
  const masterOf = async (slot: number): Promise<RedisProcess> => {
    const port = await slotMaster(anyNode(), slot);
    if (port === undefined) throw new Error(`slot ${slot} is not served`);
    return byPort(port);
  };
  const liveMasters = async (): Promise<RedisProcess[]> =>
    (await nodesOf(anyNode()))
      .filter((line) => line.flags.includes('master') && !line.flags.includes('fail') && line.slots.length > 0)
      .map((line) => byPort(line.port))
      .filter((node) => node.running());
  return {
    slotOf: async (key) => Number(await command(anyNode().port, 'CLUSTER', 'KEYSLOT', key)),
    idOf,
    masterOf,
    masters: liveMasters,
    async replicasOf(master) {
      const masterId = await idOf(master);
      const replicas: RedisProcess[] = [];
      for (const line of await nodesOf(anyNode())) {
        if (line.masterId !== masterId || line.flags.includes('fail')) continue;
        const replica = byPort(line.port);
        if (!replica.running()) continue;
        const info = String(await command(replica.port, 'INFO', 'replication'));
        if (infoField(info, 'master_link_status') === 'up') replicas.push(replica);
      }
      return replicas;
    },
    async ownersInNodes(slot) {
      return Promise.all(
        running().map(async (node) => {
          const lines = await nodesOf(node);
          const owner = lines.find((line) => line.slots.some((entry) => covers(entry, slot)))?.id;
          const moving = lines.some((line) => line.slots.some((entry) => entry.startsWith(`[${slot}-`)));
          return { node, owner, moving };
        }),
      );
    },
    async moveSlot(slot, to, options = {}) {
      const startedMs = performance.now();
      const from = await masterOf(slot);
      if (from === to) throw new Error(`slot ${slot} is already on ${to.address}`);
      const [fromId, toId] = await Promise.all([idOf(from), idOf(to)]);
      await command(to.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await command(from.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      const source = probeClient(from.port);
      let keys = 0;
      try {
        await source.connect();
        for (;;) {
          const batch = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), String(options.keysPerMigrate ?? 10))) as string[];
          if (batch.length === 0) {
            if ((options.holdMs ?? 0) > 0) await sleep(options.holdMs as number);
            // SETSLOT NODE on the source refuses while it still holds keys of the slot
            // (one written since GETKEYSINSLOT): then migrate those too.
            await command(to.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
            const assigned = await source.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', toId).then(
              () => true,
              (error: Error) => {
                if (error.message.includes('still hold keys')) return false;
                throw error;
              },
            );
            if (assigned) break;
            continue;
          }
          await source.call('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...batch);
          keys += batch.length;
          if ((options.pauseMs ?? 0) > 0) await sleep(options.pauseMs as number);
        }
      } finally {
        source.disconnect();
      }
      for (const master of await liveMasters()) {
        if (master !== from && master !== to) await command(master.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      }
      return { from, to, keys, ms: Math.round(performance.now() - startedMs) };
    },
    async waitUntilServed(slot, timeoutMs = 20_000) {
      let served: RedisProcess | undefined;
      await waitFor(
        `slot ${slot} served by a running master, cluster_state:ok on every running node`,
        async () => {
          const ports = new Set<number | undefined>();
          for (const node of running()) {
            const info = String(await command(node.port, 'CLUSTER', 'INFO'));
            if (infoField(info, 'cluster_state') !== 'ok') return false;
            ports.add(await slotMaster(node, slot));
          }
          const [port] = [...ports];
          if (ports.size !== 1 || port === undefined || !byPort(port).running()) return false;
          const info = String(await command(port, 'INFO', 'replication'));
          if (infoField(info, 'role') !== 'master') return false;
          served = byPort(port);
          return true;
        },
        { timeoutMs, everyMs: 50 },
      );
      return served as RedisProcess;
    },
  };
}

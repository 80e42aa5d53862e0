// Cluster benchmark: consume() with the cluster key layout on a 1-master and a 3-master Redis Cluster, 10,000 users in 100 orgs plus lone users; ops/s, Redis CPU per master, slot spread.
import { availableParallelism, loadavg } from 'node:os';
import { Cluster } from 'ioredis';
import { CLUSTER_LAYOUT, Tollgate } from '../src/index.js';
import { infoField, startClusterNodes, type ClusterNodes } from '../test/helpers/cluster-nodes.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ORGS = 100;
const MEMBERS_PER_ORG = 100;
const LONE_USERS = 500;
const SLOTS = 16_384;

const layout = CLUSTER_LAYOUT;
const orgName = (o: number): string => `benchorg${o}`;
const memberName = (o: number, m: number): string => `benchm${o}x${m}`;
const loneName = (u: number): string => `benchlone${u}`;

/** Every user of the bench with its org (`null`: a lone user, its own pool). */
const USERS: ReadonlyArray<{ readonly user: string; readonly org: string | null }> = [
  ...Array.from({ length: ORGS * MEMBERS_PER_ORG }, (_, i) => ({ user: memberName(Math.floor(i / MEMBERS_PER_ORG), i % MEMBERS_PER_ORG), org: orgName(Math.floor(i / MEMBERS_PER_ORG)) })),
  ...Array.from({ length: LONE_USERS }, (_, u) => ({ user: loneName(u), org: null })),
];

/** A cluster under test: its servers, a client, the Tollgate on it, and the master serving each slot. */
interface Target {
  readonly name: string;
  readonly nodes: ClusterNodes;
  readonly client: Cluster;
  readonly tollgate: Tollgate;
  /** Master port by slot. */
  readonly slotOwner: Int32Array;
}

interface MasterFigures {
  readonly port: number;
  readonly cpuUsPerOp: number;
  /** Share of all commands the masters ran (INFO commandstats). */
  readonly callShare: number;
  /** Busy share of one core while measured (CPU seconds / wall seconds). */
  readonly coreShare: number;
}

interface Figures {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly nodeUsPerOp: number;
  readonly redisUsPerOp: number;
  /** Commands the masters ran per consume (INFO commandstats; a script counts its own calls too). */
  readonly commandsPerOp: number;
  readonly masters: readonly MasterFigures[];
}

async function startTarget(name: string, masters: number): Promise<Target> {
  const nodes = await startClusterNodes({ masters, dirPrefix: 'tollgate-bench-cluster-' });
  const client = new Cluster(nodes.masters.map((node) => ({ host: '127.0.0.1', port: node.port })), { lazyConnect: true });
  await client.connect();
  const slotOwner = new Int32Array(SLOTS);
  for (const [from, to, master] of await client.cluster('SLOTS')) slotOwner.fill(Number(master?.[1]), from, to + 1);
  // 10,500 users: a config cache of 20,000 holds them all (the default, 10,000, would evict on every pass).
  const tollgate = new Tollgate({ redis: client, keyLayout: 'cluster', timeoutMs: 10_000, configCacheMaxUsers: 20_000 });
  return { name, nodes, client, tollgate, slotOwner };
}

/** Writes the orgs, member hashes, directory entries and lone users in the cluster layout (commands, not a cross-slot pipeline). */
async function seed(target: Target): Promise<void> {
  const { client } = target;
  const config = { period_end_date: '2016-10-10 00:00:00 UTC' };
  const writes: Array<() => Promise<unknown>> = [];
  for (let o = 0; o < ORGS; o += 1) writes.push(() => client.hset(layout.orgConfigKey(orgName(o)), { ...config, geocoding_quota: '1000000000' }));
  for (const { user, org } of USERS) {
    if (org === null) {
      writes.push(() => client.hset(layout.directoryKey(user), { ...config, geocoding_quota: '1000000000' }));
    } else {
      writes.push(() => client.hset(layout.userConfigKey(user, org), { organization: org }));
      writes.push(() => client.hset(layout.directoryKey(user), { organization: org }));
    }
  }
  for (let i = 0; i < writes.length; i += 2000) await Promise.all(writes.slice(i, i + 2000).map((write) => write()));
}

async function masterStats(target: Target): Promise<Array<{ port: number; cpuS: number; calls: number }>> {
  return Promise.all(
    target.nodes.masters.map(async (node) => {
      const redis = target.client.nodes('master').find((n) => n.options.port === node.port);
      if (redis === undefined) throw new Error(`no connection to master ${node.port}`);
      const cpu = await redis.info('cpu');
      const stats = await redis.info('commandstats');
      let calls = 0;
      for (const match of stats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1]);
      return { port: node.port, cpuS: Number(infoField(cpu, 'used_cpu_user')) + Number(infoField(cpu, 'used_cpu_sys')), calls };
    }),
  );
}

/** The i-th user picked: a fixed stride over all users, so both clusters see the same sequence. */
const pick = (i: number): { user: string; org: string | null } => USERS[(i * 7919) % USERS.length] as { user: string; org: string | null };

/** Keeps IN_FLIGHT consumes going for DURATION_MS on one cluster; counts the ops of each pool. */
async function measure(target: Target, opsByPool: Map<string, number>): Promise<Figures> {
  const latencies: number[] = [];
  let counter = Math.floor(Math.random() * USERS.length);
  const before = await masterStats(target);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + DURATION_MS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < deadline) {
        const { user, org } = pick(counter++);
        const t0 = performance.now();
        const admission = await target.tollgate.consume({ user, kind: 'geocoding' });
        latencies.push(performance.now() - t0);
        if (!admission.allowed) throw new Error(`bench user ${user} was denied: ${admission.reason}`);
        const pool = layout.poolTag(user, org);
        opsByPool.set(pool, (opsByPool.get(pool) ?? 0) + 1);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const after = await masterStats(target);
  const ops = latencies.length;
  const calls = after.reduce((sum, m, i) => sum + m.calls - (before[i]?.calls ?? 0), 0);
  const masters = after.map((m, i) => {
    const cpuS = m.cpuS - (before[i]?.cpuS ?? 0);
    return { port: m.port, cpuUsPerOp: (cpuS * 1e6) / ops, callShare: (m.calls - (before[i]?.calls ?? 0)) / calls, coreShare: cpuS / elapsedS };
  });
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(ops - 1, Math.floor(q * ops))] ?? 0;
  return {
    opsPerSecond: ops / elapsedS,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    nodeUsPerOp: (cpu.user + cpu.system) / ops,
    redisUsPerOp: masters.reduce((sum, m) => sum + m.cpuUsPerOp, 0),
    commandsPerOp: calls / ops,
    masters,
  };
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const pct = (share: number): string => `${(share * 100).toFixed(2)}%`;

/** Keys per slot on every master, read back from Redis (CLUSTER COUNTKEYSINSLOT over each master's slots). */
async function keysPerSlot(target: Target): Promise<Int32Array> {
  const counts = new Int32Array(SLOTS);
  for (const redis of target.client.nodes('master')) {
    const mine: number[] = [];
    for (let slot = 0; slot < SLOTS; slot += 1) if (target.slotOwner[slot] === redis.options.port) mine.push(slot);
    const pipeline = redis.pipeline();
    for (const slot of mine) pipeline.cluster('COUNTKEYSINSLOT', slot);
    const replies = (await pipeline.exec()) ?? [];
    mine.forEach((slot, i) => {
      counts[slot] = Number(replies[i]?.[1] ?? 0);
    });
  }
  return counts;
}

/** The spread of pools, keys and load over slots and masters on one cluster. */
async function spread(target: Target, opsByPool: ReadonlyMap<string, number>): Promise<void> {
  const probe = target.client.nodes('master')[0];
  if (probe === undefined) throw new Error('no master');
  const pools = [...new Set(USERS.map(({ user, org }) => layout.poolTag(user, org)))];
  const pipeline = probe.pipeline();
  for (const pool of pools) pipeline.cluster('KEYSLOT', pool);
  const replies = (await pipeline.exec()) ?? [];
  const slotOfPool = new Map(pools.map((pool, i) => [pool, Number(replies[i]?.[1])]));
  const orgSlots = new Set(Array.from({ length: ORGS }, (_, o) => slotOfPool.get(`{org:${orgName(o)}}`)));
  const poolSlots = new Set(slotOfPool.values());

  const opsBySlot = new Map<number, number>();
  let totalOps = 0;
  for (const [pool, ops] of opsByPool) {
    const slot = slotOfPool.get(pool) as number;
    opsBySlot.set(slot, (opsBySlot.get(slot) ?? 0) + ops);
    totalOps += ops;
  }
  const [busiestSlot, busiestOps] = [...opsBySlot].reduce((best, entry) => (entry[1] > best[1] ? entry : best), [0, 0]);

  const keys = await keysPerSlot(target);
  let totalKeys = 0;
  let usedSlots = 0;
  let busiestKeySlot = 0;
  const keysByMaster = new Map<number, number>();
  const opsByMaster = new Map<number, number>();
  for (let slot = 0; slot < SLOTS; slot += 1) {
    const n = keys[slot] as number;
    totalKeys += n;
    if (n > 0) usedSlots += 1;
    if (n > (keys[busiestKeySlot] as number)) busiestKeySlot = slot;
    const owner = target.slotOwner[slot] as number;
    keysByMaster.set(owner, (keysByMaster.get(owner) ?? 0) + n);
    opsByMaster.set(owner, (opsByMaster.get(owner) ?? 0) + (opsBySlot.get(slot) ?? 0));
  }
  console.log(`\n${target.name}: how ${USERS.length.toLocaleString('en')} users spread`);
  console.log(
    `  pools: ${pools.length.toLocaleString('en')} (${ORGS} orgs of ${MEMBERS_PER_ORG} members, ${LONE_USERS} lone users) in ${poolSlots.size.toLocaleString('en')} distinct slots; ` +
      `the ${ORGS} orgs in ${orgSlots.size} slots`,
  );
  console.log(
    `  keys: ${totalKeys.toLocaleString('en')} in ${usedSlots.toLocaleString('en')} slots (directory entries sit in each user's own slot); ` +
      `busiest slot ${busiestKeySlot} holds ${(keys[busiestKeySlot] as number).toLocaleString('en')} keys = ${pct((keys[busiestKeySlot] as number) / totalKeys)}`,
  );
  console.log(`  consumes measured: ${totalOps.toLocaleString('en')}; busiest slot ${busiestSlot} took ${pct(busiestOps / totalOps)} (one org's pool: 1 of ${ORGS} orgs, ~${pct(MEMBERS_PER_ORG / USERS.length)} of the users)`);
  for (const node of target.nodes.masters) {
    console.log(
      `  master :${node.port}: ${(keysByMaster.get(node.port) ?? 0).toLocaleString('en')} keys (${pct((keysByMaster.get(node.port) ?? 0) / totalKeys)}), ` +
        `${pct((opsByMaster.get(node.port) ?? 0) / totalOps)} of the consumes`,
    );
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const targets = [await startTarget('1 master (a 1-master cluster holding all 16,384 slots)', 1), await startTarget('3 masters', 3)];
  try {
    for (const target of targets) {
      await seed(target);
      // Warm-up: every user once (config cache, script cache, one open reservation bucket per pool).
      for (let i = 0; i < USERS.length; i += IN_FLIGHT) {
        await Promise.all(USERS.slice(i, i + IN_FLIGHT).map(({ user }) => target.tollgate.consume({ user, kind: 'geocoding' })));
      }
    }
    console.log(`clusters started and seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const loadBefore = loadavg()[0] as number;
    const results = new Map<string, Figures[]>(targets.map((t) => [t.name, []]));
    const opsByPool = new Map<Target, Map<string, number>>(targets.map((t) => [t, new Map()]));
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
        results.get(target.name)?.push(await measure(target, opsByPool.get(target) as Map<string, number>));
      }
    }

    console.log(
      `\ncluster benchmark: consume() with keyLayout 'cluster', ${IN_FLIGHT} calls in flight from one Node process (one ioredis Cluster client), ` +
        `${DURATION_MS} ms per run, ${ROUNDS} interleaved rounds (median); no replicas; ${USERS.length.toLocaleString('en')} users: ` +
        `${(ORGS * MEMBERS_PER_ORG).toLocaleString('en')} in ${ORGS} orgs + ${LONE_USERS} lone; ${availableParallelism()} CPU cores, ` +
        `1-minute load average ${loadBefore.toFixed(1)} before the runs and ${(loadavg()[0] as number).toFixed(1)} after (above the core count, every process waits for a core)`,
    );
    console.log(['case'.padEnd(56), 'ops/s'.padStart(8), 'p50 ms'.padStart(7), 'p99 ms'.padStart(7), 'node µs/op'.padStart(11), 'redis µs/op'.padStart(12), 'cmds/op'.padStart(8)].join(' '));
    const figures = new Map<Target, Figures>();
    for (const target of targets) {
      const list = results.get(target.name) ?? [];
      const pickMedian = (field: 'opsPerSecond' | 'p50Ms' | 'p99Ms' | 'nodeUsPerOp' | 'redisUsPerOp' | 'commandsPerOp'): number => median(list.map((f) => f[field]));
      // The run whose ops/s is the median, for the per-master breakdown.
      const middle = [...list].sort((a, b) => a.opsPerSecond - b.opsPerSecond)[Math.floor(list.length / 2)] as Figures;
      figures.set(target, middle);
      console.log(
        [
          target.name.padEnd(56),
          pickMedian('opsPerSecond').toFixed(0).padStart(8),
          pickMedian('p50Ms').toFixed(2).padStart(7),
          pickMedian('p99Ms').toFixed(2).padStart(7),
          pickMedian('nodeUsPerOp').toFixed(1).padStart(11),
          pickMedian('redisUsPerOp').toFixed(1).padStart(12),
          pickMedian('commandsPerOp').toFixed(2).padStart(8),
        ].join(' '),
      );
      for (const m of middle.masters) {
        console.log(`    master :${m.port}  ${m.cpuUsPerOp.toFixed(1).padStart(5)} µs CPU per op (of all ops)  ${pct(m.callShare).padStart(7)} of the commands  busy ${pct(m.coreShare)} of a core`);
      }
    }
    const [one, three] = targets.map((t) => results.get(t.name) ?? []) as [Figures[], Figures[]];
    const ratio = (field: 'opsPerSecond' | 'redisUsPerOp' | 'nodeUsPerOp'): string => (median(three.map((f) => f[field])) / median(one.map((f) => f[field]))).toFixed(2);
    console.log(`\n3 masters vs 1: ops/s ${ratio('opsPerSecond')}x, Redis CPU per op (all masters) ${ratio('redisUsPerOp')}x, Node CPU per op ${ratio('nodeUsPerOp')}x`);
    for (const target of targets) await spread(target, opsByPool.get(target) as Map<string, number>);
  } finally {
    for (const target of targets) {
      await target.tollgate.close();
      target.client.disconnect();
      await target.nodes.stop();
    }
  }
}

await main();

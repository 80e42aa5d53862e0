// `tollgate migrate`: reads a Tollgate keyspace in one key layout, checks the target, writes it in the other layout in per-slot pipelines, and proves the source did not move.
import calculateSlot from 'cluster-key-slot';
import type { ChainableCommander, Redis } from 'ioredis';
import { ERROR_CODES, InvalidInputError, UnexpectedReplyError } from '../core/errors.js';
import type { KeyLayoutName } from '../core/layout.js';
import {
  classifySourceKey,
  MIGRATED_KINDS,
  MigrationConflictError,
  planMigration,
  sameValue,
  sourceLayoutOf,
  SourceChangedError,
  type CopiedType,
  type KeyValue,
  type KindCounts,
  type MigratedKind,
  type MigrationReport,
  type ParsedSource,
  type PlannedKey,
  type SourceRecord,
  type UnmappedKey,
} from '../core/migration.js';
import { isCluster, toTollgateError, type RedisClient } from './connection.js';

/** The steps of a migration, in order; `check` reads the target, `verify` re-reads the source. */
export type MigrationPhase = 'read' | 'check' | 'write' | 'verify';

/** How far a phase is: keys done of keys to do (`read`: of the source's DBSIZE, an estimate). */
export interface MigrationProgress {
  readonly phase: MigrationPhase;
  readonly done: number;
  readonly total: number;
}

/** What to migrate where. */
export interface MigrateOptions {
  /** The layout to write: `cluster` reads a CARTO-layout source, `carto` a cluster-layout one. */
  readonly to: KeyLayoutName;
  readonly source: RedisClient;
  readonly target: RedisClient;
  /** Read and compare only; write nothing. */
  readonly dryRun?: boolean;
  /** Called after each batch of keys. */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** How many conflicts, unmapped and changed keys the report names (default 20). */
  readonly listed?: number;
}

/** Commands per pipeline to a single Redis; a cluster pipeline holds the keys of one hash slot. */
const SINGLE_BATCH = 500;
/** Every credit ledger, in either layout (a cluster one carries its org's tag after the prefix). */
const LEDGER_PATTERN = 'tollgate:credits:*';
/** Pipelines in flight at once: one node per single Redis, many small per-slot ones on a cluster. */
const SINGLE_IN_FLIGHT = 4;
const CLUSTER_IN_FLIGHT = 64;

/** Either client's pipeline (a Cluster pipeline sends to the node of its keys' slot). */
type PipelineOwner = Pick<Redis, 'pipeline'>;

type ReadResult = KeyValue | null | 'wrong-type';

function queueRead(pipeline: ChainableCommander, key: string, type: CopiedType): void {
  switch (type) {
    case 'hash':
      pipeline.hgetall(key);
      break;
    case 'zset':
      pipeline.zrange(key, 0, '-1', 'WITHSCORES');
      break;
    case 'list':
      pipeline.lrange(key, 0, -1);
      break;
    case 'string':
      pipeline.get(key).pttl(key);
      break;
  }
}

const isWrongType = (error: Error | null): boolean => error !== null && error.message.startsWith('WRONGTYPE');

/**
 * Reads each key as the type it should have, in one pipeline: its value, `null` when it does
 * not exist (Redis keeps no empty hash, set or list), `'wrong-type'` when it holds another type.
 */
async function readKeys(owner: PipelineOwner, items: ReadonlyArray<{ readonly key: string; readonly type: CopiedType }>): Promise<ReadResult[]> {
  const pipeline = owner.pipeline();
  for (const { key, type } of items) queueRead(pipeline, key, type);
  // Taken before Redis answers, so a remaining lifetime read with PTTL never ends later than it did.
  const sentMs = Date.now();
  let replies: Array<[Error | null, unknown]> | null;
  try {
    replies = await pipeline.exec();
  } catch (error) {
    throw toTollgateError(error);
  }
  let at = 0;
  const next = (): [Error | null, unknown] => {
    const reply = replies?.[at];
    at += 1;
    if (reply === undefined) throw new UnexpectedReplyError('migrate: a pipeline answered fewer replies than commands');
    return reply;
  };
  return items.map(({ type }): ReadResult => {
    const [error, reply] = next();
    const pttl = type === 'string' ? next() : null;
    if (isWrongType(error)) return 'wrong-type';
    if (error !== null) throw toTollgateError(error);
    switch (type) {
      case 'hash': {
        const fields = reply as Record<string, string>;
        return Object.keys(fields).length === 0 ? null : { type, fields };
      }
      case 'zset': {
        const flat = reply as string[];
        return flat.length === 0 ? null : { type, flat };
      }
      case 'list': {
        const items = reply as string[];
        return items.length === 0 ? null : { type, items };
      }
      case 'string': {
        if (pttl?.[0]) throw toTollgateError(pttl[0]);
        const ttl = Number(pttl?.[1]);
        if (reply === null || ttl === -2) return null;
        return { type, value: reply as string, expiresAtMs: ttl >= 0 ? sentMs + ttl : null };
      }
    }
  });
}

/**
 * The keys in pipeline-sized groups: on a cluster, one group per hash slot (an ioredis Cluster
 * pipeline goes to the node of its slot; every cluster-layout key carries its pool's tag, so a
 * pool's keys are one group); on one Redis, fixed-size chunks.
 */
function groupsFor(client: RedisClient, keys: readonly PlannedKey[]): PlannedKey[][] {
  if (!isCluster(client)) {
    const groups: PlannedKey[][] = [];
    for (let i = 0; i < keys.length; i += SINGLE_BATCH) groups.push(keys.slice(i, i + SINGLE_BATCH));
    return groups;
  }
  const bySlot = new Map<number, PlannedKey[]>();
  for (const planned of keys) {
    const slot = calculateSlot(planned.key);
    const group = bySlot.get(slot);
    if (group === undefined) bySlot.set(slot, [planned]);
    else group.push(planned);
  }
  return [...bySlot.values()];
}

/** Runs `work` on every group, `inFlight` at a time; the first failure stops the rest. */
async function eachGroup<T>(groups: readonly T[], inFlight: number, work: (group: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < groups.length) {
      const group = groups[next] as T;
      next += 1;
      try {
        await work(group);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, groups.length) }, worker));
}

function queueWrite(pipeline: ChainableCommander, { key, value }: PlannedKey, nowMs: number): boolean {
  switch (value.type) {
    case 'hash':
      pipeline.hset(key, value.fields);
      return true;
    case 'zset':
      const args: string[] = [];
      for (let i = 0; i + 1 < value.flat.length; i += 2) args.push(value.flat[i + 1] as string, value.flat[i] as string);
      pipeline.zadd(key, ...args);
      return true;
    case 'list':
      pipeline.rpush(key, ...value.items);
      return true;
    case 'string': {
      if (value.expiresAtMs === null) {
        pipeline.set(key, value.value, 'NX');
        return true;
      }
      // What is left of the lifetime read from the source: never longer than it had there.
      const remainingMs = Math.floor(value.expiresAtMs - nowMs);
      if (remainingMs <= 0) return false;
      pipeline.set(key, value.value, 'PX', remainingMs, 'NX');
      return true;
    }
  }
}

const emptyCounts = (): Record<MigratedKind, KindCounts> =>
  Object.fromEntries(MIGRATED_KINDS.map((kind) => [kind, { write: 0, equal: 0, conflict: 0 }])) as Record<MigratedKind, KindCounts>;

/** The single-node clients to read: the client, or every master of a cluster. */
const nodesOf = (client: RedisClient): Redis[] => (isCluster(client) ? client.nodes('master') : [client]);

/**
 * Copies every Tollgate key of `source` into `target` in the layout `to` (docs/cluster.md,
 * "tollgate migrate"). Reads the whole source first (memory grows with the keyspace), checks
 * every target key, and writes only when no target key differs from what would be written;
 * equal keys are skipped, so a re-run finishes an interrupted one. Re-reads the source at the
 * end and throws {@link SourceChangedError} when a copied key moved meanwhile.
 *
 * @throws MigrationConflictError when target keys differ (nothing written); on a dry run the
 *   conflicts are in the report instead.
 */
export async function migrateKeyspace(options: MigrateOptions): Promise<MigrationReport> {
  const startedMs = performance.now();
  const { to, source, target } = options;
  const dryRun = options.dryRun === true;
  const listed = options.listed ?? 20;
  const phaseMs: Partial<Record<MigrationPhase, number>> = {};
  let phaseStartedMs = startedMs;
  let current: MigrationPhase | null = null;
  const progress = (step: MigrationProgress): void => {
    if (step.phase !== current) {
      const nowMs = performance.now();
      if (current !== null) phaseMs[current] = Math.round(nowMs - phaseStartedMs);
      current = step.phase;
      phaseStartedMs = nowMs;
    }
    options.onProgress?.(step);
  };
  if (to === 'carto' && isCluster(target)) {
    throw new InvalidInputError(ERROR_CODES.invalidArgument, 'the CARTO layout cannot be written to a Redis Cluster: its keys of one decision span several hash slots');
  }

  // 1. Read the source.
  const read = await readSource(source, to, progress);
  const plan = planMigration(to, read.records.values());
  const unmapped = [...read.unmapped, ...plan.unmapped];

  // 2. Check every target key.
  const kinds = emptyCounts();
  const toWrite: PlannedKey[] = [];
  const conflicts: string[] = [];
  let checked = 0;
  const inFlight = isCluster(target) ? CLUSTER_IN_FLIGHT : SINGLE_IN_FLIGHT;
  progress({ phase: 'check', done: 0, total: plan.keys.length });
  // An empty target holds nothing to compare with: every key is to be written (the first run's case).
  const targetEmpty = (await keyCount(target)) === 0;
  await eachGroup(groupsFor(target, plan.keys), inFlight, async (group) => {
    const found = targetEmpty ? group.map(() => null) : await readKeys(target, group.map(({ key, value }) => ({ key, type: value.type })));
    group.forEach((planned, index) => {
      const existing = found[index];
      const counts = kinds[planned.kind];
      if (existing === null || existing === undefined) {
        counts.write += 1;
        toWrite.push(planned);
      } else if (existing !== 'wrong-type' && sameValue(planned.value, existing)) counts.equal += 1;
      else {
        counts.conflict += 1;
        conflicts.push(planned.key);
      }
    });
    checked += group.length;
    progress({ phase: 'check', done: checked, total: plan.keys.length });
  });
  conflicts.sort();

  const report = (extra: { written: number; expired: number; verified: number }): MigrationReport => ({
    to,
    dryRun,
    sourceKeys: read.scanned,
    kinds,
    ...extra,
    conflicts: { count: conflicts.length, first: conflicts.slice(0, listed) },
    leftOut: read.leftOut,
    unmapped: { count: unmapped.length, first: [...unmapped].sort((a, b) => (a.key < b.key ? -1 : 1)).slice(0, listed) },
    otherKeys: read.other,
    elapsedMs: Math.round(performance.now() - startedMs),
    phaseMs: current === null ? { ...phaseMs } : { ...phaseMs, [current]: Math.round(performance.now() - phaseStartedMs) },
  });
  if (dryRun) return report({ written: 0, expired: 0, verified: 0 });
  if (conflicts.length > 0) throw new MigrationConflictError(report({ written: 0, expired: 0, verified: 0 }));

  // 3. Write what is missing.
  let written = 0;
  let expired = 0;
  progress({ phase: 'write', done: 0, total: toWrite.length });
  await eachGroup(groupsFor(target, toWrite), inFlight, async (group) => {
    const pipeline = target.pipeline();
    const nowMs = Date.now();
    let queued = 0;
    for (const planned of group) {
      if (queueWrite(pipeline, planned, nowMs)) queued += 1;
      else expired += 1;
    }
    if (queued > 0) {
      let replies: Array<[Error | null, unknown]> | null;
      try {
        replies = await pipeline.exec();
      } catch (error) {
        throw toTollgateError(error);
      }
      for (const [error] of replies ?? []) if (error !== null) throw toTollgateError(error);
    }
    written += queued;
    progress({ phase: 'write', done: written + expired, total: toWrite.length });
  });

  // 4. The source must not have moved while it was copied.
  const changed = await changedSourceKeys(source, to, read.records, progress);
  const verified = read.counters;
  const done = report({ written, expired, verified: changed.count === 0 ? verified : 0 });
  if (changed.count > 0) throw new SourceChangedError(done, changed.first.slice(0, listed), changed.count);
  return done;
}

interface SourceRead {
  readonly records: Map<string, SourceRecord>;
  readonly unmapped: UnmappedKey[];
  readonly leftOut: { reservations: number; journal: number };
  readonly other: number;
  readonly scanned: number;
  /** Usage counters and credit ledgers read: what the end-of-run check compares. */
  readonly counters: number;
}

/** Keys per SCAN step of a migration walk. */
const WALK_COUNT = 2000;

/**
 * Walks the keys matching `pattern` on every node (each master of a cluster, in parallel),
 * handing each SCAN batch to `take` while the node's next SCAN step runs. Memory: two batches
 * per node.
 */
async function walk(client: RedisClient, pattern: string, take: (node: Redis, keys: string[]) => Promise<void>): Promise<void> {
  await Promise.all(
    nodesOf(client).map(async (node) => {
      let cursor = '0';
      const failed: unknown[] = [];
      let pending: Promise<void> = Promise.resolve();
      do {
        let reply: [string, string[]];
        try {
          reply = await node.scan(cursor, 'MATCH', pattern, 'COUNT', WALK_COUNT);
        } catch (error) {
          await pending;
          throw toTollgateError(error);
        }
        await pending;
        if (failed.length > 0) throw failed[0];
        cursor = reply[0];
        const keys = reply[1];
        // Caught here and rethrown above: a rejection must not wait unhandled while SCAN runs.
        pending = keys.length === 0 ? Promise.resolve() : take(node, keys).catch((error: unknown) => void failed.push(error));
      } while (cursor !== '0');
      await pending;
      if (failed.length > 0) throw failed[0];
    }),
  );
}

/** Keys on the client's node, or on all masters of a cluster. */
async function keyCount(client: RedisClient): Promise<number> {
  try {
    const sizes = await Promise.all(nodesOf(client).map((node) => node.dbsize()));
    return sizes.reduce((sum, size) => sum + size, 0);
  } catch (error) {
    throw toTollgateError(error);
  }
}

async function readSource(source: RedisClient, to: KeyLayoutName, progress: (p: MigrationProgress) => void): Promise<SourceRead> {
  const records = new Map<string, SourceRecord>();
  const unmapped: UnmappedKey[] = [];
  const leftOut = { reservations: 0, journal: 0 };
  let other = 0;
  let scanned = 0;
  let counters = 0;
  const total = await keyCount(source);
  // SCAN may return a key more than once (while the table is rehashed).
  const seen = new Set<string>();
  progress({ phase: 'read', done: 0, total });
  await walk(source, '*', async (node, keys) => {
    const wanted: Array<{ key: string; type: CopiedType; parsed: SourceRecord['parsed'] }> = [];
    for (const key of keys) {
      if (seen.has(key)) continue;
      seen.add(key);
      scanned += 1;
      const found = classifySourceKey(to, key);
      switch (found.role) {
        case 'copy':
          wanted.push({ key, type: found.type, parsed: found.parsed });
          break;
        case 'left-out':
          leftOut[found.what] += 1;
          break;
        case 'unparsed':
          unmapped.push({ key, reason: found.reason });
          break;
        case 'other':
          other += 1;
          break;
      }
    }
    const values = wanted.length === 0 ? [] : await readKeys(node, wanted);
    wanted.forEach(({ key, type, parsed }, index) => {
      const value = values[index];
      if (value === 'wrong-type') unmapped.push({ key, reason: `is not a Redis ${type}` });
      else if (value !== null && value !== undefined) {
        records.set(key, { key, parsed, value });
        if (isCounter(parsed)) counters += 1;
      }
    });
    progress({ phase: 'read', done: scanned, total: Math.max(total, scanned) });
  });
  return { records, unmapped, leftOut, other, scanned, counters };
}

const isCounter = (parsed: ParsedSource): boolean => parsed.what === 'usage' || parsed.what === 'ledger';

/**
 * Re-reads every usage counter and credit ledger of the source (what every admission changes)
 * and compares it with what was read first: one changed, gone, or new since means a writer
 * was running while the keyspace was copied.
 */
async function changedSourceKeys(
  source: RedisClient,
  to: KeyLayoutName,
  first: ReadonlyMap<string, SourceRecord>,
  progress: (p: MigrationProgress) => void,
): Promise<{ count: number; first: string[] }> {
  const changed = new Set<string>();
  const seen = new Set<string>();
  let done = 0;
  const total = [...first.values()].filter(({ parsed }) => isCounter(parsed)).length;
  const layout = sourceLayoutOf(to);
  const patterns = [...layout.usageKeyPatterns('user'), ...layout.usageKeyPatterns('org'), LEDGER_PATTERN];
  progress({ phase: 'verify', done: 0, total });
  for (const pattern of patterns) {
    await walk(source, pattern, async (node, keys) => {
      const wanted: Array<{ key: string; type: CopiedType }> = [];
      for (const key of keys) {
        const found = classifySourceKey(to, key);
        if (!seen.has(key) && found.role === 'copy' && isCounter(found.parsed)) wanted.push({ key, type: found.type });
        seen.add(key);
      }
      if (wanted.length === 0) return;
      const values = await readKeys(node, wanted);
      wanted.forEach(({ key }, index) => {
        const now = values[index];
        const before = first.get(key);
        if (now === null || now === undefined || now === 'wrong-type') {
          if (before !== undefined) changed.add(key);
        } else if (before === undefined || !sameValue(before.value, now)) changed.add(key);
      });
      done += wanted.length;
      progress({ phase: 'verify', done, total: Math.max(total, done) });
    });
  }
  for (const { key, parsed } of first.values()) if (isCounter(parsed) && !seen.has(key)) changed.add(key);
  return { count: changed.size, first: [...changed].sort() };
}

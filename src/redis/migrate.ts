// `tollgate migrate`: reads a Tollgate keyspace in one key layout, checks the target, writes it in the other layout in per-slot pipelines, and proves the source did not move.
import type { ChainableCommander, Redis } from 'ioredis';
import { ERROR_CODES, InvalidInputError, UnexpectedReplyError } from '../core/errors.js';
import type { KeyLayoutName } from '../core/layout.js';
import {
  canonicalValue,
  classifySourceKey,
  MIGRATED_KINDS,
  MigrationConflictError,
  planMigration,
  sameValue,
  SourceChangedError,
  type CopiedType,
  type KeyValue,
  type KindCounts,
  type MigratedKind,
  type MigrationReport,
  type PlannedKey,
  type SourceRecord,
  type UnmappedKey,
} from '../core/migration.js';
import { isCluster, toTollgateError, type RedisClient } from './connection.js';
import { scanBatches } from './scan.js';

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

/** Commands per pipeline to a single Redis; a cluster pipeline holds the keys of one hash tag. */
const SINGLE_BATCH = 500;
/** Pipelines in flight at once: one node per single Redis, many small per-slot ones on a cluster. */
const SINGLE_IN_FLIGHT = 4;
const CLUSTER_IN_FLIGHT = 128;

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
  let replies: Array<[Error | null, unknown]> | null;
  try {
    replies = await pipeline.exec();
  } catch (error) {
    throw toTollgateError(error);
  }
  const nowMs = Date.now();
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
        const entries: Array<readonly [string, string]> = [];
        for (let i = 0; i + 1 < flat.length; i += 2) entries.push([flat[i] as string, flat[i + 1] as string]);
        return entries.length === 0 ? null : { type, entries };
      }
      case 'list': {
        const items = reply as string[];
        return items.length === 0 ? null : { type, items };
      }
      case 'string': {
        if (pttl?.[0]) throw toTollgateError(pttl[0]);
        const ttl = Number(pttl?.[1]);
        if (reply === null || ttl === -2) return null;
        return { type, value: reply as string, expiresAtMs: ttl >= 0 ? nowMs + ttl : null };
      }
    }
  });
}

/** The part of a key Redis Cluster hashes: its first non-empty `{...}`, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/**
 * The keys in pipeline-sized groups: on a cluster, one group per hash tag (keys of one tag share
 * a slot, and every cluster-layout key carries its pool's tag); on one Redis, fixed-size chunks.
 */
function groupsFor(client: RedisClient, keys: readonly PlannedKey[]): PlannedKey[][] {
  if (!isCluster(client)) {
    const groups: PlannedKey[][] = [];
    for (let i = 0; i < keys.length; i += SINGLE_BATCH) groups.push(keys.slice(i, i + SINGLE_BATCH));
    return groups;
  }
  const byTag = new Map<string, PlannedKey[]>();
  for (const planned of keys) {
    const tag = hashTag(planned.key);
    const group = byTag.get(tag);
    if (group === undefined) byTag.set(tag, [planned]);
    else group.push(planned);
  }
  return [...byTag.values()];
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
      pipeline.zadd(key, ...value.entries.flatMap(([member, score]) => [score, member]));
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
  const progress = options.onProgress ?? (() => undefined);
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
  await eachGroup(groupsFor(target, plan.keys), inFlight, async (group) => {
    const found = await readKeys(target, group.map(({ key, value }) => ({ key, type: value.type })));
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
  const verified = read.stable;
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
  /** Copied keys that do not expire: what the end-of-run check compares. */
  readonly stable: number;
}

async function sourceSize(source: RedisClient): Promise<number> {
  try {
    const sizes = await Promise.all(nodesOf(source).map((node) => node.dbsize()));
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
  let stable = 0;
  const total = await sourceSize(source);
  // SCAN may return a key more than once (while the table is rehashed).
  const seen = new Set<string>();
  progress({ phase: 'read', done: 0, total });
  for await (const batch of scanBatches(source, '*')) {
    const wanted: Array<{ key: string; type: CopiedType; parsed: SourceRecord['parsed'] }> = [];
    for (const key of batch.keys) {
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
    const values = wanted.length === 0 ? [] : await readKeys(batch.node, wanted);
    wanted.forEach(({ key, type, parsed }, index) => {
      const value = values[index];
      if (value === 'wrong-type') unmapped.push({ key, reason: `is not a Redis ${type}` });
      else if (value !== null && value !== undefined) {
        records.set(key, { key, parsed, value });
        if (value.type !== 'string') stable += 1;
      }
    });
    progress({ phase: 'read', done: scanned, total: Math.max(total, scanned) });
  }
  return { records, unmapped, leftOut, other, scanned, stable };
}

/**
 * Re-reads every copied source key that does not expire and compares it with what was read
 * first: a key changed, gone, or new since means a writer was running.
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
  const total = [...first.values()].filter(({ value }) => value.type !== 'string').length;
  progress({ phase: 'verify', done: 0, total });
  for await (const batch of scanBatches(source, '*')) {
    const wanted: Array<{ key: string; type: CopiedType }> = [];
    for (const key of batch.keys) {
      const found = classifySourceKey(to, key);
      if (!seen.has(key) && found.role === 'copy' && found.type !== 'string') wanted.push({ key, type: found.type });
      seen.add(key);
    }
    if (wanted.length === 0) continue;
    const values = await readKeys(batch.node, wanted);
    wanted.forEach(({ key }, index) => {
      const now = values[index];
      const before = first.get(key);
      if (now === null || now === undefined || now === 'wrong-type') {
        if (before !== undefined) changed.add(key);
      } else if (before === undefined || canonicalValue(before.value) !== canonicalValue(now)) changed.add(key);
    });
    done += wanted.length;
    progress({ phase: 'verify', done, total: Math.max(total, done) });
  }
  for (const { key, value } of first.values()) if (value.type !== 'string' && !seen.has(key)) changed.add(key);
  return { count: changed.size, first: [...changed].sort() };
}

// Walks the keyspace with SCAN (never KEYS) in bounded batches, on every primary of a cluster, and reads what it finds.
import type { Redis } from 'ioredis';
import { ORGANIZATION_FIELD } from '../core/config.js';
import { globLiteral, type Owner } from '../core/keys.js';
import { dayOfMember } from '../core/cycle.js';
import { CARTO_LAYOUT, type KeyLayout } from '../core/layout.js';
import { nameProblem } from '../core/names.js';
import { ERROR_CODES, InvalidInputError, UnexpectedReplyError } from '../core/errors.js';
import { isCluster, toTollgateError, type RedisClient } from './connection.js';
import { configKeyPattern, memberKeyPattern, memberOfKey, nameOfConfigKey } from './homes.js';

/** Keys per SCAN step: large enough for few round trips, small enough to keep a batch in memory. */
export const SCAN_COUNT = 1000;

/** One SCAN batch and the node it came from, so follow-up reads can be pipelined on that node. */
export interface ScanBatch {
  readonly node: Redis;
  readonly keys: readonly string[];
}

/**
 * The single-node clients to scan: the client itself, or every primary of a cluster, in a
 * stable order (host:port) so a paging cursor means the same node to another process. A
 * cluster client that has not loaded its slot map yet knows no node: one PING waits for it.
 */
async function nodesOf(client: RedisClient): Promise<Redis[]> {
  if (!isCluster(client)) return [client];
  if (client.status !== 'ready') {
    try {
      await client.ping();
    } catch (error) {
      throw toTollgateError(error);
    }
  }
  const address = (node: Redis): string => `${node.options.host ?? ''}:${String(node.options.port ?? '')}`;
  return client.nodes('master').sort((a, b) => (address(a) < address(b) ? -1 : address(a) > address(b) ? 1 : 0));
}

/** Yields the keys matching `pattern`, one SCAN batch at a time; memory stays at one batch. */
export async function* scanBatches(client: RedisClient, pattern: string): AsyncGenerator<ScanBatch> {
  for (const node of await nodesOf(client)) {
    let cursor = '0';
    do {
      let reply: [string, string[]];
      try {
        reply = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      } catch (error) {
        throw toTollgateError(error);
      }
      const [next, keys] = reply;
      cursor = next;
      if (keys.length > 0) yield { node, keys };
    } while (cursor !== '0');
  }
}

/** Unwraps pipeline results, rethrowing the first error as a typed one. */
export function pipelineValues(results: Array<[Error | null, unknown]> | null): unknown[] {
  return (results ?? []).map(([error, value]) => {
    if (error !== null) throw toTollgateError(error);
    return value;
  });
}

/**
 * The members of an org. CARTO layout: every `rails:users:<name>` whose `organization` field
 * names it (the field is the source of truth, other tools may write it), so this walks all
 * user hashes. Cluster layout: the org's member hashes, all in the org's slot, whose
 * `organization` names it.
 */
export async function* orgMembers(client: RedisClient, org: string, layout: KeyLayout = CARTO_LAYOUT): AsyncGenerator<string> {
  const memberPattern = memberKeyPattern(layout, org);
  const pattern = memberPattern ?? configKeyPattern(layout, 'user');
  const nameOf = (key: string): string | null => (memberPattern === null ? nameOfConfigKey(layout, 'user', key) : memberOfKey(layout, org, key));
  for await (const batch of scanBatches(client, pattern)) {
    const names = batch.keys.map(nameOf);
    const keys = batch.keys.filter((_, index) => names[index] !== null);
    if (keys.length === 0) continue;
    const pipeline = batch.node.pipeline();
    for (const key of keys) pipeline.hget(key, ORGANIZATION_FIELD);
    let values: unknown[];
    try {
      values = pipelineValues(await pipeline.exec());
    } catch {
      // A key of another type under the pattern is not a user; read them one by one to skip it.
      values = await Promise.all(keys.map((key) => batch.node.hget(key, ORGANIZATION_FIELD).catch(() => null)));
    }
    for (const [index, key] of keys.entries()) {
      const name = nameOf(key)!;
      if (values[index] === org && nameProblem(name) === null) yield name;
    }
  }
}

/**
 * Each key's sorted set as `[day, count]` pairs, one per day, read with one pipeline on `node`.
 * Members are read as days by `dayOfMember`: `"05"` and `"5"` add up, a member that is no day
 * is left out. A key of another type is not a usage counter and reads as empty.
 */
export async function readSortedSets(node: Redis, keys: readonly string[]): Promise<Array<Array<[number, number]>>> {
  const pipeline = node.pipeline();
  for (const key of keys) pipeline.zrange(key, 0, '-1', 'WITHSCORES');
  let results: Array<[Error | null, unknown]> | null;
  try {
    results = await pipeline.exec();
  } catch (error) {
    throw toTollgateError(error);
  }
  return keys.map((_, index) => {
    const [error, value] = results?.[index] ?? [null, []];
    if (error !== null) {
      if (error.message.startsWith('WRONGTYPE')) return [];
      throw toTollgateError(error);
    }
    if (!Array.isArray(value)) throw new UnexpectedReplyError('ZRANGE: unexpected reply');
    const days = new Map<number, number>();
    for (let i = 0; i + 1 < value.length; i += 2) {
      const day = dayOfMember(String(value[i]));
      if (day !== null) days.set(day, (days.get(day) ?? 0) + Number(value[i + 1]));
    }
    return [...days];
  });
}

/** Which master serves which slots, as the masters say it, and whether a slot is on the move. */
export interface SlotAssignment {
  /** Each master's id and slot ranges (migration markers included), one line a master, sorted. */
  readonly fingerprint: string;
  /** Whether a master reports a slot it is migrating out or importing. */
  readonly moving: boolean;
}

/** `[1234->-<id>]` (migrating out) or `[1234-<-<id>]` (importing) in a master's own CLUSTER NODES line. */
const MIGRATION_MARKER = /\[\d+-[<>]-/;

/**
 * The slot assignment of a cluster, each master's own CLUSTER NODES line (only a node's own line
 * shows the slots it is migrating or importing); `null` on a single Redis. Equal before and after
 * a walk over every master means no key moved between masters while it ran: a SCAN of one master
 * after another can otherwise miss a key that moved to a master already walked, or meet it twice.
 */
export async function slotAssignment(client: RedisClient): Promise<SlotAssignment | null> {
  if (!isCluster(client)) return null;
  const masters = await nodesOf(client);
  let lines: string[];
  try {
    lines = await Promise.all(
      masters.map(async (node) => {
        const own = String(await node.cluster('NODES'))
          .split('\n')
          .find((line) => (line.split(' ')[2] ?? '').split(',').includes('myself'));
        if (own === undefined) throw new UnexpectedReplyError('CLUSTER NODES: no line for the node itself');
        const fields = own.trim().split(' ');
        return [fields[0], ...fields.slice(8)].join(' ');
      }),
    );
  } catch (error) {
    throw toTollgateError(error);
  }
  const fingerprint = lines.sort().join('\n');
  return { fingerprint, moving: MIGRATION_MARKER.test(fingerprint) };
}

/** One page of a paged SCAN: the keys found and the cursor to continue from (`"0"`: done). */
export interface ScanPage {
  readonly keys: readonly string[];
  readonly cursor: string;
}

const PAGE_CURSOR = /^(\d{1,4})-(\d{1,20})$/;

/**
 * One SCAN step over `pattern` from `cursor` (`"0"` to start), about `count` keys. On a cluster
 * the cursor also names the primary being walked (`<node>-<cursor>`), so paging crosses nodes.
 * An unreadable cursor throws {@link InvalidInputError}.
 */
export async function scanPage(client: RedisClient, pattern: string, cursor: string, count: number): Promise<ScanPage> {
  const nodes = await nodesOf(client);
  let nodeIndex = 0;
  let nodeCursor = '0';
  if (cursor !== '0') {
    const match = PAGE_CURSOR.exec(cursor);
    if (match === null || Number(match[1]) >= nodes.length) throw new InvalidInputError(ERROR_CODES.invalidArgument, 'cursor must be one a previous page returned');
    nodeIndex = Number(match[1]);
    nodeCursor = match[2]!;
  }
  const keys: string[] = [];
  // SCAN may answer an empty step; keep going until something is found or this node is done.
  for (;;) {
    let reply: [string, string[]];
    try {
      reply = await nodes[nodeIndex]!.scan(nodeCursor, 'MATCH', pattern, 'COUNT', count);
    } catch (error) {
      throw toTollgateError(error);
    }
    keys.push(...reply[1]);
    nodeCursor = reply[0];
    if (nodeCursor === '0') {
      nodeIndex += 1;
      if (nodeIndex >= nodes.length) return { keys, cursor: '0' };
    }
    if (keys.length > 0) return { keys, cursor: `${nodeIndex}-${nodeCursor}` };
  }
}

/** The SCAN pattern of an owner's credit ledgers (every org, for a user in the cluster layout). */
export function ledgerPattern(layout: KeyLayout, owner: Owner): string {
  const org = owner.type === 'org' ? globLiteral(owner.name) : '\u0001';
  const probe = layout.creditLedgerKey({ type: owner.type, name: globLiteral(owner.name) }, org, '\u0002', '\u0003');
  return probe.replace('\u0001', '*').replace('\u0002', '*').replace('\u0003', '*');
}

/**
 * Every usage key of one owner (checked by the layout's parseUsageKey), in every home, and its
 * credit ledger keys: what deleting the owner would leave behind. Memory holds them all; an
 * owner has a few per month.
 */
export async function ownerUsageKeys(client: RedisClient, owner: Owner, layout: KeyLayout = CARTO_LAYOUT): Promise<string[]> {
  const found: string[] = [];
  for (const pattern of layout.usageKeyPatterns(owner.type, owner.name)) {
    for await (const batch of scanBatches(client, pattern)) {
      for (const key of batch.keys) {
        const parsed = layout.parseUsageKey(key);
        if (parsed !== null && parsed.owner.type === owner.type && parsed.owner.name === owner.name) found.push(key);
      }
    }
  }
  for await (const batch of scanBatches(client, ledgerPattern(layout, owner))) found.push(...batch.keys);
  return found;
}

/** Every key matching `pattern` on every primary (for patterns that match few keys). */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for await (const batch of scanBatches(client, pattern)) found.push(...batch.keys);
  return found;
}

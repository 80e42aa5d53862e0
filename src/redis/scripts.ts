// Loads the Lua scripts into an ioredis client and wraps each in a typed call with a checked decoder.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CreditPlan, DecisionPlan, Increment } from '../core/accounting.js';
import type { Account } from '../core/config.js';
import { CREDIT_FIELDS } from '../core/config.js';
import { UnexpectedReplyError } from '../core/errors.js';
import type { RedisClient } from './connection.js';
import { STATUS, inlineStatuses } from './statuses.js';

/** The folder holding the `.lua` files, found from this module whether it runs from src/ or dist/src/. */
function luaDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth += 1) {
    const candidate = join(dir, 'lua');
    if (existsSync(join(candidate, 'decide.lua'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('Tollgate cannot find its lua/ folder next to the package');
}

const LUA_DIR = luaDirectory();

/** A script's source and the versioned command name it is defined under. */
export interface ScriptSource {
  readonly command: string;
  readonly lua: string;
}

/**
 * Reads `lua/<name>.lua`. With `shared`, lua/lib/common.lua is stitched in front and every
 * `STATUS.<NAME>` written as its number (src/redis/statuses.ts), so helpers and status codes live once.
 */
export function loadScript(name: string, shared = false): ScriptSource {
  const own = readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8');
  const lua = shared ? inlineStatuses(`${readFileSync(join(LUA_DIR, 'lib', 'common.lua'), 'utf8')}\n${own}`) : own;
  // The content hash in the name lets two Tollgate versions share one client without clashing.
  const version = createHash('sha1').update(lua).digest('hex').slice(0, 10);
  return { command: `tollgate_${name}_${version}`, lua };
}

const SCRIPTS = {
  decide: loadScript('decide', true),
  settle: loadScript('settle', true),
  configWrite: loadScript('config-write'),
  applyOnce: loadScript('apply-once'),
  usageRepair: loadScript('usage-repair'),
} as const;

type ScriptCommand = (...args: Array<string | number>) => Promise<unknown>;

/** Defines every script on `client` (idempotent) so ioredis handles EVALSHA and NOSCRIPT fallback. */
export function defineScripts(client: RedisClient): void {
  for (const script of Object.values(SCRIPTS)) {
    if (!(script.command in client)) client.defineCommand(script.command, { lua: script.lua });
  }
}

/** Each client's script commands, bound once rather than on every call. */
const boundCommands = new WeakMap<RedisClient, Map<string, ScriptCommand>>();

export function commandOf(client: RedisClient, source: ScriptSource): ScriptCommand {
  let commands = boundCommands.get(client);
  if (commands === undefined) {
    commands = new Map();
    boundCommands.set(client, commands);
  }
  let bound = commands.get(source.command);
  if (bound === undefined) {
    const command = (client as unknown as Record<string, ScriptCommand | undefined>)[source.command];
    if (command === undefined) throw new Error(`script ${source.command} was not defined on this client`);
    bound = command.bind(client);
    commands.set(source.command, bound);
  }
  return bound;
}

/** A plan flattened for decide.lua once, reused by every call until the account or the day changes. */
export interface CompiledPlan {
  /** KEYS after the per-call ones, each once: config hashes, usage sorted sets, credit ledgers. */
  readonly keys: readonly string[];
  /** The plan's part of decide.lua's ARGV[1]: a cjson object left open for the call's fields. */
  readonly head: string;
  /** The config hashes, in KEYS order, for naming a hash in errors. */
  readonly configKeys: readonly string[];
}

/** Flattens a plan for decide.lua: one HMGET per config hash, every key once, one cjson payload. */
export function compileDecidePlan(account: Account, plan: DecisionPlan, credits: CreditPlan | null): CompiledPlan {
  const parts = new Map<string, { f: string[]; v: Array<string | null>; x: string[] }>();
  for (const part of [...plan.fingerprint, ...(credits?.fingerprint ?? [])]) {
    let merged = parts.get(part.key);
    if (merged === undefined) {
      merged = { f: [], v: [], x: [] };
      parts.set(part.key, merged);
    }
    for (const [field, value] of part.fields) {
      if (merged.f.includes(field)) continue;
      merged.f.push(field);
      merged.v.push(value);
    }
  }
  const configKeys = [...parts.keys()];
  const keys = [...configKeys];
  /** The key's place among the plan's keys (1-based), added once. */
  const indexOf = (key: string): number => {
    const at = keys.indexOf(key);
    return at === -1 ? keys.push(key) : at + 1;
  };
  let cr: Record<string, unknown> | undefined;
  if (credits !== null) {
    const [userKey, orgKey, userLedger, orgLedger] = credits.keys;
    const userIndex = configKeys.indexOf(userKey) + 1;
    const orgIndex = configKeys.indexOf(orgKey) + 1;
    if (userIndex === 0 || orgIndex === 0) throw new Error('credit plan names a config hash outside the fingerprint');
    if (credits.enabled) {
      parts.get(orgKey)?.x.push(CREDIT_FIELDS.balance);
      parts.get(userKey)?.x.push(CREDIT_FIELDS.spent);
    }
    cr = {
      on: credits.enabled,
      alloc: credits.allocationMillicredits ?? -1,
      pu: credits.millicreditsPerUnit,
      bal: [orgIndex, CREDIT_FIELDS.balance],
      spent: [userIndex, CREDIT_FIELDS.spent],
      led: [indexOf(userLedger), indexOf(orgLedger)],
    };
  }
  const json = JSON.stringify({
    cfg: [...parts.values()].map(({ f, v, x }) => ({
      f,
      l: v.map((value) => (value === null ? -1 : Buffer.byteLength(value, 'utf8'))),
      d: fingerprintDigest(v),
      ...(v.every((value) => value === null) ? { e: true } : {}),
      ...(x.length === 0 ? {} : { x }),
    })),
    rd: plan.reads.map((read) => [indexOf(read.key), read.fromDay, read.toDay]),
    ch: plan.charges.map((charge) => [indexOf(charge.key), charge.perCost, charge.fixed]),
    day: plan.day,
    ds: plan.dayStartMs,
    de: plan.dayEndMs,
    q: account.quota,
    soft: account.softLimit,
    ...(cr === undefined ? {} : { cr }),
  });
  return { keys, head: json.slice(0, -1), configKeys };
}

/**
 * The digest decide.lua recomputes from the values it reads: the values concatenated (a missing
 * one as nothing), SHA-1 in hex. The script also compares each value's length in bytes with the
 * plan's, so lengths and concatenation together pin every value down.
 */
export function fingerprintDigest(values: ReadonlyArray<string | null>): string {
  const hash = createHash('sha1');
  for (const value of values) if (value !== null) hash.update(value, 'utf8');
  return hash.digest('hex');
}

/** The per-call part of a decision; see lua/decide.lua. */
export interface DecideCall {
  readonly mode: 'check' | 'consume';
  readonly cost: number;
  /** Epoch ms of an injected clock, or `null` for the Redis server's clock. */
  readonly nowMs: number | null;
  /**
   * Server-clock epoch ms after which the caller has given up waiting; the script then writes
   * nothing, so a command that reaches Redis late (queued offline, re-sent) never charges.
   */
  readonly deadlineMs: number | null;
  /** The reservation's bucket hash and field, its pending value, and when the bucket expires (server clock). */
  readonly bucketKey: string;
  readonly field: string;
  readonly pendingValue: string;
  /** `null` when the bucket's expiry is known to be set. */
  readonly expireAtMs: number | null;
  /** With a request id: its key, how long it is remembered, the reservation's signature, what a replay must match. */
  readonly requestId: {
    readonly key: string;
    readonly ttlMs: number;
    readonly signature: string;
    readonly match: string;
  } | null;
}

/** The credit side of a decision as the script measured it; `availableMillicredits` -1 when no budget applied. */
export interface DecideCredits {
  readonly denied: boolean;
  readonly costMillicredits: number;
  readonly availableMillicredits: number;
}

/** What the decide script answered. */
export type DecideReply =
  | {
      readonly status: 'decided';
      readonly allowed: boolean;
      readonly used: number;
      readonly nowMs: number;
      readonly credits: DecideCredits;
    }
  /** `signature` is the original reservation's for a request id, `''` for a re-sent copy of this very call. */
  | { readonly status: 'replayed'; readonly used: number; readonly nowMs: number; readonly signature: string }
  | { readonly status: 'config_changed' }
  | { readonly status: 'day_changed' }
  | { readonly status: 'expired' }
  | { readonly status: 'request_id_reused' }
  | { readonly status: 'wrong_type'; readonly key: string }
  | { readonly status: 'bad_counter'; readonly key: string; readonly field: string }
  | { readonly status: 'counter_limit'; readonly key: string };

function integerAt(reply: unknown[], index: number, script: string): number {
  const value = reply[index];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new UnexpectedReplyError(`${script}: reply[${index}] is not an integer`);
  }
  return value;
}

function stringAt(reply: unknown[], index: number, script: string): string {
  const value = reply[index];
  if (typeof value !== 'string') throw new UnexpectedReplyError(`${script}: reply[${index}] is not a string`);
  return value;
}

function arrayReply(reply: unknown, script: string): unknown[] {
  if (!Array.isArray(reply)) throw new UnexpectedReplyError(`${script}: reply is not an array`);
  return reply;
}

/** Sockets corked by {@link coalesceWrites} and not yet uncorked. */
const corked = new WeakSet<Socket>();

/**
 * Lets the decisions asked for in one turn of the event loop leave in one socket write: the
 * client's socket is corked at the first and uncorked once the turn's I/O callbacks have run.
 * Every command still goes through ioredis as usual (queueing, NOSCRIPT fallback, re-send after
 * a reconnect) and is still its own EVALSHA; only the write system call is shared, which on a busy
 * server costs Node and Redis more than the script itself. A Cluster client is left as it is.
 */
function coalesceWrites(client: RedisClient): void {
  const stream = (client as { stream?: unknown }).stream;
  if (!(stream instanceof Socket) || corked.has(stream) || client.status !== 'ready') return;
  corked.add(stream);
  stream.cork();
  setImmediate(() => {
    corked.delete(stream);
    stream.uncork();
  });
}

/**
 * decide.lua's ARGV[1]: the plan's object closed by the call's own fields. The two share no
 * top-level name (cjson would keep the later one); test/unit/decide-payload.test.ts holds them apart.
 */
export function decidePayload(plan: CompiledPlan, call: DecideCall): string {
  const rid = call.requestId;
  const callJson = JSON.stringify({
    mode: call.mode,
    cost: call.cost,
    now: call.nowMs ?? undefined,
    dl: call.deadlineMs ?? undefined,
    f: call.field,
    val: call.pendingValue,
    exp: call.expireAtMs ?? undefined,
    rid: rid === null ? undefined : true,
    ridTtl: rid?.ttlMs,
    sig: rid?.signature,
    match: rid?.match,
  });
  return `${plan.head},${callJson.slice(1)}`;
}

/** Runs lua/decide.lua: one EVALSHA. */
export function runDecide(client: RedisClient, plan: CompiledPlan, call: DecideCall): Promise<DecideReply> {
  const rid = call.requestId;
  coalesceWrites(client);
  const args: Array<string | number> = rid === null ? [plan.keys.length + 1, call.bucketKey] : [plan.keys.length + 2, call.bucketKey, rid.key];
  for (const key of plan.keys) args.push(key);
  args.push(decidePayload(plan, call));
  // Not an async function: the reply is decoded in the command's own continuation, one promise fewer per call.
  return commandOf(client, SCRIPTS.decide)(...args).then(decideReply);
}

/** Decodes decide.lua's reply with checked types. */
function decideReply(raw: unknown): DecideReply {
  const reply = arrayReply(raw, 'decide');
  const status = integerAt(reply, 0, 'decide');
  switch (status) {
    case STATUS.DECIDED:
      return {
        status: 'decided',
        allowed: integerAt(reply, 1, 'decide') === 1,
        used: integerAt(reply, 2, 'decide'),
        nowMs: integerAt(reply, 3, 'decide'),
        credits: {
          denied: integerAt(reply, 4, 'decide') === 1,
          costMillicredits: integerAt(reply, 5, 'decide'),
          availableMillicredits: integerAt(reply, 6, 'decide'),
        },
      };
    case STATUS.REPLAYED:
      return {
        status: 'replayed',
        used: integerAt(reply, 2, 'decide'),
        nowMs: integerAt(reply, 3, 'decide'),
        signature: stringAt(reply, 4, 'decide'),
      };
    case STATUS.CONFIG_CHANGED:
      return { status: 'config_changed' };
    case STATUS.DAY_CHANGED:
      return { status: 'day_changed' };
    case STATUS.EXPIRED:
      return { status: 'expired' };
    case STATUS.REQUEST_ID_REUSED:
      return { status: 'request_id_reused' };
    case STATUS.WRONG_TYPE:
      return { status: 'wrong_type', key: stringAt(reply, 4, 'decide') };
    case STATUS.BAD_COUNTER:
      return { status: 'bad_counter', key: stringAt(reply, 4, 'decide'), field: stringAt(reply, 5, 'decide') };
    case STATUS.COUNTER_LIMIT:
      return { status: 'counter_limit', key: stringAt(reply, 4, 'decide') };
    default:
      throw new UnexpectedReplyError(`decide: unknown status ${status}`);
  }
}

/** One reservation to settle; see lua/settle.lua. */
export interface SettleEntry {
  readonly bucketKey: string;
  readonly field: string;
  /** The pending value the admission stored: `p<cost>:<check>`. */
  readonly pendingValue: string;
  readonly day: string;
  readonly increments: readonly Increment[];
  /** Units refunded as failed; their credits go back when the admission charged any. */
  readonly failedUnits: number;
  /** User hash, org hash, user ledger, org ledger of an org member's reservation; `null` otherwise. */
  readonly creditKeys: readonly [string, string, string, string] | null;
}

/** What the settle script answered for one entry. */
export type SettleReply = 'settled' | 'already_settled' | 'unknown' | 'mismatch' | 'wrong_type' | 'bad_credits';

const SETTLE_REPLIES: ReadonlyMap<number, SettleReply> = new Map([
  [STATUS.SETTLED, 'settled'],
  [STATUS.ALREADY_SETTLED, 'already_settled'],
  [STATUS.UNKNOWN_RESERVATION, 'unknown'],
  [STATUS.MISMATCH, 'mismatch'],
  [STATUS.WRONG_TYPE, 'wrong_type'],
  [STATUS.BAD_COUNTER, 'bad_credits'],
]);

/** Runs lua/settle.lua for several reservations in one call; one reply per entry, in order. */
export async function runSettle(client: RedisClient, entries: readonly SettleEntry[]): Promise<SettleReply[]> {
  const keys: string[] = [];
  const indexOf = new Map<string, number>();
  const index = (key: string): number => {
    let at = indexOf.get(key);
    if (at === undefined) {
      keys.push(key);
      at = keys.length;
      indexOf.set(key, at);
    }
    return at;
  };
  const payload = entries.map((entry) => ({
    b: index(entry.bucketKey),
    f: entry.field,
    p: entry.pendingValue,
    day: entry.day,
    u: entry.increments.map((inc) => [index(inc.key), inc.delta]),
    fail: entry.failedUnits,
    ...(entry.creditKeys === null
      ? {}
      : { cr: [...entry.creditKeys.map(index), CREDIT_FIELDS.balance, CREDIT_FIELDS.spent] }),
  }));
  const reply = arrayReply(await commandOf(client, SCRIPTS.settle)(keys.length, ...keys, JSON.stringify(payload)), 'settle');
  if (reply.length !== entries.length) throw new UnexpectedReplyError(`settle: ${reply.length} replies for ${entries.length} entries`);
  return reply.map((_, at) => {
    const status = integerAt(reply, at, 'settle');
    const settled = SETTLE_REPLIES.get(status);
    if (settled === undefined) throw new UnexpectedReplyError(`settle: unknown status ${status}`);
    return settled;
  });
}

/** A guarded change to one config hash; see lua/config-write.lua. */
export interface ConfigWrite {
  readonly key: string;
  /** `update` needs the hash to exist, `create` needs it not to. */
  readonly mode: 'update' | 'create';
  /** Other config hashes that must exist. */
  readonly requires?: readonly string[];
  /** Fields that must still hold these raw values (`null`: must be missing). */
  readonly expect?: Readonly<Record<string, string | null>>;
  readonly set?: Readonly<Record<string, string>>;
  readonly del?: readonly string[];
  /** Integer deltas for counter fields. */
  readonly incr?: Readonly<Record<string, number>>;
}

/** What the config-write script did. */
export type ConfigWriteReply =
  | { readonly status: 'done'; readonly deleted: number }
  | { readonly status: 'missing'; readonly key: string }
  | { readonly status: 'exists' }
  | { readonly status: 'changed'; readonly field: string }
  | { readonly status: 'wrong_type'; readonly key: string }
  | { readonly status: 'bad_counter'; readonly field: string };

/** Runs lua/config-write.lua. */
export async function runConfigWrite(client: RedisClient, write: ConfigWrite): Promise<ConfigWriteReply> {
  const keys = [write.key, ...(write.requires ?? [])];
  const expect = Object.entries(write.expect ?? {});
  const set = Object.entries(write.set ?? {});
  const del = write.del ?? [];
  const incr = Object.entries(write.incr ?? {});
  const args: Array<string | number> = [write.mode, expect.length];
  for (const [field, value] of expect) args.push(field, value === null ? '!' : `=${value}`);
  args.push(set.length);
  for (const [field, value] of set) args.push(field, value);
  args.push(del.length, ...del, incr.length);
  for (const [field, delta] of incr) args.push(field, delta);

  const reply = arrayReply(await commandOf(client, SCRIPTS.configWrite)(keys.length, ...keys, ...args), 'config-write');
  const status = integerAt(reply, 0, 'config-write');
  const index = integerAt(reply, 1, 'config-write');
  const at = <T>(list: readonly T[], position: number): T => {
    const item = list[position];
    if (item === undefined) throw new UnexpectedReplyError(`config-write: index ${index} out of range`);
    return item;
  };
  switch (status) {
    case 1:
      return { status: 'done', deleted: index };
    case 2:
      return { status: 'missing', key: at(keys, index - 1) };
    case 3:
      return { status: 'exists' };
    case 4:
      return { status: 'changed', field: at(expect, index - 1)[0] };
    case 5:
      return { status: 'wrong_type', key: at(keys, index - 1) };
    case 6:
      return { status: 'bad_counter', field: at(incr, index - 1)[0] };
    default:
      throw new UnexpectedReplyError(`config-write: unknown status ${status}`);
  }
}

/** What the apply-once script did with one entry. */
export type ApplyOnceReply = 'applied' | 'already_applied' | 'wrong_type';

/** One entry of an apply-once batch: `increments` at `day`, unless `markerKey` says they were applied. */
export interface ApplyOnceEntry {
  readonly markerKey: string;
  readonly day: string;
  readonly increments: readonly Increment[];
}

/** Runs lua/apply-once.lua over a batch of entries; one reply per entry, in order. */
export async function runApplyOnce(
  client: RedisClient,
  input: { readonly markerTtlMs: number; readonly entries: readonly ApplyOnceEntry[] },
): Promise<ApplyOnceReply[]> {
  const keys: string[] = [];
  const indexes = new Map<string, number>();
  const indexOf = (key: string): number => {
    let index = indexes.get(key);
    if (index === undefined) {
      index = keys.push(key);
      indexes.set(key, index);
    }
    return index;
  };
  const entries = input.entries.map((entry) => ({
    m: indexOf(entry.markerKey),
    d: entry.day,
    k: entry.increments.map((inc) => indexOf(inc.key)),
    v: entry.increments.map((inc) => String(inc.delta)),
  }));
  const bag = JSON.stringify({ ttl: input.markerTtlMs, entries });
  const reply = arrayReply(await commandOf(client, SCRIPTS.applyOnce)(keys.length, ...keys, bag), 'apply-once');
  if (reply.length !== entries.length) throw new UnexpectedReplyError(`apply-once: ${reply.length} statuses for ${entries.length} entries`);
  return reply.map((_, index) => {
    const status = integerAt(reply, index, 'apply-once');
    switch (status) {
      case 1:
        return 'applied';
      case 2:
        return 'already_applied';
      case 5:
        return 'wrong_type';
      default:
        throw new UnexpectedReplyError(`apply-once: unknown status ${status}`);
    }
  });
}

/** What the usage-repair script did. */
export type UsageRepairReply = 'removed' | 'changed' | 'wrong_type';

/** Runs lua/usage-repair.lua: removes `member` of `key` only if it still holds `score` (as ZRANGE printed it). */
export async function runUsageRepair(client: RedisClient, key: string, member: string, score: string): Promise<UsageRepairReply> {
  const reply = arrayReply(await commandOf(client, SCRIPTS.usageRepair)(1, key, member, score), 'usage-repair');
  const status = integerAt(reply, 0, 'usage-repair');
  switch (status) {
    case 1:
      return 'removed';
    case 2:
      return 'changed';
    case 3:
      return 'wrong_type';
    default:
      throw new UnexpectedReplyError(`usage-repair: unknown status ${status}`);
  }
}

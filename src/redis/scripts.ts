// Loads the Lua scripts into an ioredis client and wraps each in a typed call with a checked decoder.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FingerprintPart } from '../core/config.js';
import type { CreditPlan, Increment, UsageRead } from '../core/accounting.js';
import { CREDIT_FIELDS } from '../core/config.js';
import { UnexpectedReplyError } from '../core/errors.js';
import type { RedisClient } from './connection.js';

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

export function loadScript(name: string): ScriptSource {
  const lua = readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8');
  // The content hash in the name lets two Tollgate versions share one client without clashing.
  const version = createHash('sha1').update(lua).digest('hex').slice(0, 10);
  return { command: `tollgate_${name}_${version}`, lua };
}

const SCRIPTS = {
  decide: loadScript('decide'),
  settle: loadScript('settle'),
  configWrite: loadScript('config-write'),
  applyOnce: loadScript('apply-once'),
} as const;

type ScriptCommand = (...args: Array<string | number>) => Promise<unknown>;

/** Defines every script on `client` (idempotent) so ioredis handles EVALSHA and NOSCRIPT fallback. */
export function defineScripts(client: RedisClient): void {
  for (const script of Object.values(SCRIPTS)) {
    if (!(script.command in client)) client.defineCommand(script.command, { lua: script.lua });
  }
}

export function commandOf(client: RedisClient, source: ScriptSource): ScriptCommand {
  const command = (client as unknown as Record<string, ScriptCommand | undefined>)[source.command];
  if (command === undefined) throw new Error(`script ${source.command} was not defined on this client`);
  return command.bind(client);
}

/** Input of the decide script; see lua/decide.lua for the layout it is flattened into. */
export interface DecideInput {
  readonly reservationKey: string;
  readonly requestIdKey: string | null;
  readonly fingerprint: readonly FingerprintPart[];
  readonly reads: readonly UsageRead[];
  readonly chargeKeys: readonly string[];
  /** Epoch ms of an injected clock, or `null` for the Redis server's clock. */
  readonly nowMs: number | null;
  readonly dayStartMs: number;
  readonly dayEndMs: number;
  readonly day: string;
  readonly cost: number;
  readonly quota: number;
  readonly softLimit: boolean;
  readonly mode: 'check' | 'consume';
  readonly signature: string;
  readonly reservationTtlMs: number;
  readonly requestIdTtlMs: number;
  /**
   * Server-clock epoch ms after which the caller has given up waiting; the script then writes
   * nothing, so a command that reaches Redis late (queued offline, re-sent) never charges.
   */
  readonly deadlineMs: number | null;
  /** The credit check of an org member, or `null`/absent outside an org. */
  readonly credits?: CreditPlan | null;
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
  | { readonly status: 'replayed'; readonly used: number; readonly nowMs: number; readonly signature: string }
  | { readonly status: 'config_changed'; readonly nowMs: number }
  | { readonly status: 'day_changed'; readonly nowMs: number }
  | { readonly status: 'wrong_type'; readonly key: string }
  | { readonly status: 'bad_credits'; readonly key: string }
  | { readonly status: 'expired' };

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

/** Runs lua/decide.lua. */
export async function runDecide(client: RedisClient, input: DecideInput): Promise<DecideReply> {
  const credits = input.credits ?? null;
  const fingerprint = [...input.fingerprint, ...(credits?.fingerprint ?? [])];
  const keys = [
    input.reservationKey,
    input.requestIdKey ?? input.reservationKey,
    ...fingerprint.map((part) => part.key),
    ...input.reads.map((read) => read.key),
    ...input.chargeKeys,
    ...(credits?.keys ?? []),
  ];
  const args: Array<string | number> = [
    fingerprint.length,
    input.reads.length,
    input.chargeKeys.length,
    input.nowMs === null ? '' : input.nowMs,
    input.dayStartMs,
    input.dayEndMs,
    input.day,
    input.cost,
    input.quota,
    input.softLimit ? '1' : '0',
    input.mode,
    input.requestIdKey === null ? '0' : '1',
    input.signature,
    input.reservationTtlMs,
    input.requestIdTtlMs,
    credits === null ? 0 : credits.keys.length,
    credits?.enabled ? '1' : '0',
    credits?.allocationMillicredits ?? -1,
    credits?.millicreditsPerUnit ?? 0,
    CREDIT_FIELDS.balance,
    CREDIT_FIELDS.spent,
    input.deadlineMs === null ? '' : input.deadlineMs,
  ];
  for (const part of fingerprint) {
    args.push(part.fields.length);
    for (const [field, value] of part.fields) args.push(field, value === null ? '!' : `=${value}`);
  }
  for (const read of input.reads) args.push(read.fromDay, read.toDay);

  const reply = arrayReply(await commandOf(client, SCRIPTS.decide)(keys.length, ...keys, ...args), 'decide');
  const status = integerAt(reply, 0, 'decide');
  switch (status) {
    case 1:
      return {
        status: 'decided',
        allowed: integerAt(reply, 1, 'decide') === 1,
        used: integerAt(reply, 2, 'decide'),
        nowMs: integerAt(reply, 3, 'decide'),
        credits: {
          denied: integerAt(reply, 5, 'decide') === 1,
          costMillicredits: integerAt(reply, 6, 'decide'),
          availableMillicredits: integerAt(reply, 7, 'decide'),
        },
      };
    case 2:
      return {
        status: 'replayed',
        used: integerAt(reply, 2, 'decide'),
        nowMs: integerAt(reply, 3, 'decide'),
        signature: stringAt(reply, 4, 'decide'),
      };
    case 3:
      return { status: 'config_changed', nowMs: integerAt(reply, 3, 'decide') };
    case 4:
      return { status: 'day_changed', nowMs: integerAt(reply, 3, 'decide') };
    case 5:
      return { status: 'wrong_type', key: stringAt(reply, 4, 'decide') };
    case 6:
      return { status: 'bad_credits', key: stringAt(reply, 4, 'decide') };
    case 7:
      return { status: 'expired' };
    default:
      throw new UnexpectedReplyError(`decide: unknown status ${status}`);
  }
}

/** Input of the settle script; see lua/settle.lua. */
export interface SettleInput {
  readonly reservationKey: string;
  readonly signature: string;
  readonly day: string;
  readonly keepMs: number;
  readonly increments: readonly Increment[];
  /** Units refunded as failed; their credits go back when the admission charged any. */
  readonly failedUnits?: number;
  /** User hash, org hash, user ledger, org ledger of an org member's reservation; `null`/absent otherwise. */
  readonly creditKeys?: readonly [string, string, string, string] | null;
}

/** What the settle script answered. */
export type SettleReply = 'settled' | 'already_settled' | 'unknown' | 'mismatch' | 'wrong_type' | 'bad_credits';

/** Runs lua/settle.lua. */
export async function runSettle(client: RedisClient, input: SettleInput): Promise<SettleReply> {
  const creditKeys = input.creditKeys ?? [];
  const keys = [input.reservationKey, ...input.increments.map((inc) => inc.key), ...creditKeys];
  const args = [
    input.signature,
    input.day,
    input.keepMs,
    creditKeys.length,
    input.failedUnits ?? 0,
    CREDIT_FIELDS.balance,
    CREDIT_FIELDS.spent,
    ...input.increments.map((inc) => inc.delta),
  ];
  const reply = arrayReply(await commandOf(client, SCRIPTS.settle)(keys.length, ...keys, ...args), 'settle');
  const status = integerAt(reply, 0, 'settle');
  switch (status) {
    case 1:
      return 'settled';
    case 2:
      return 'already_settled';
    case 3:
      return 'unknown';
    case 4:
      return 'mismatch';
    case 5:
      return 'wrong_type';
    case 6:
      return 'bad_credits';
    default:
      throw new UnexpectedReplyError(`settle: unknown status ${status}`);
  }
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

/** What the apply-once script did. */
export type ApplyOnceReply = 'applied' | 'already_applied' | 'wrong_type';

/** Runs lua/apply-once.lua: `increments` at `day`, unless `markerKey` says they were applied. */
export async function runApplyOnce(
  client: RedisClient,
  input: { readonly markerKey: string; readonly day: string; readonly markerTtlMs: number; readonly increments: readonly Increment[] },
): Promise<ApplyOnceReply> {
  const keys = [input.markerKey, ...input.increments.map((inc) => inc.key)];
  const args = [input.day, input.markerTtlMs, ...input.increments.map((inc) => inc.delta)];
  const reply = arrayReply(await commandOf(client, SCRIPTS.applyOnce)(keys.length, ...keys, ...args), 'apply-once');
  const status = integerAt(reply, 0, 'apply-once');
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
}

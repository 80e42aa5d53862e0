// Moves a user between pools in the cluster key layout (join, leave or change org): the four idempotent steps of docs/cluster.md.
import { randomBytes } from 'node:crypto';
import { CREDIT_FIELDS, ORGANIZATION_FIELD, type RawHash } from '../core/config.js';
import { yyyymm } from '../core/cycle.js';
import { ConflictError, ERROR_CODES, InvalidConfigError, NotFoundError, UnexpectedReplyError } from '../core/errors.js';
import { globLiteral } from '../core/keys.js';
import type { KeyLayout } from '../core/layout.js';
import { readHash } from './accounts.js';
import { toTollgateError, type RedisClient } from './connection.js';
import { homeUsagePattern, MOVE_FIELDS, MOVE_ID_FIELD, MOVED_FROM_FIELD, MOVING_TO_FIELD } from './homes.js';
import { scanKeys } from './scan.js';
import { commandOf, loadScript, runConfigWrite, type ConfigWrite, type ScriptSource } from './scripts.js';

const MOVE_HOME = loadScript('move-home');
const LEAVE_HOME = loadScript('leave-home');

/** Fields a move never carries from the old home: the directory's and the move's own. */
const NOT_CARRIED = new Set([ORGANIZATION_FIELD, ...MOVE_FIELDS]);

/** What the caller adds to the new home (a member's org, its new allocation) or leaves out of it. */
export interface HomeFields {
  readonly set: Readonly<Record<string, string>>;
  /** Old-home fields not carried (credit fields of the org left, for instance). */
  readonly drop: readonly string[];
}

/** What {@link moveHome} did. */
export interface MoveOutcome {
  /** `moved`: a move ran (or a half-done one was finished); `unchanged`: already there. */
  readonly result: 'moved' | 'unchanged';
  /** The move id (`<YYYYMM>-<random>`), `null` when nothing moved. */
  readonly moveId: string | null;
  /** Usage keys whose counters were carried into the new home. */
  readonly carriedKeys: number;
  /** Request ids carried with their remaining TTL. */
  readonly carriedRequestIds: number;
}

function define(client: RedisClient, script: ScriptSource): (...args: Array<string | number>) => Promise<unknown> {
  if (!(script.command in client)) client.defineCommand(script.command, { lua: script.lua });
  return commandOf(client, script);
}

async function statusOf(call: Promise<unknown>, name: string): Promise<number> {
  let reply: unknown;
  try {
    reply = await call;
  } catch (error) {
    throw toTollgateError(error);
  }
  const status = Array.isArray(reply) ? Number(reply[0]) : NaN;
  if (!Number.isInteger(status)) throw new UnexpectedReplyError(`${name}: unexpected reply`);
  return status;
}

async function configWrite(client: RedisClient, write: ConfigWrite, what: string): Promise<void> {
  let reply;
  try {
    reply = await runConfigWrite(client, write);
  } catch (error) {
    throw toTollgateError(error);
  }
  if (reply.status === 'done') return;
  if (reply.status === 'wrong_type') throw new InvalidConfigError(reply.key, '', 'holds the wrong Redis type; nothing was written');
  throw new ConflictError(ERROR_CODES.concurrentChange, `${what}: ${write.key} changed meanwhile (${reply.status}); nothing was written, run the command again`);
}

/** The two months a move carries: the move's month and the one before (a cycle spans at most two). */
export function carriedMonths(moveId: string): string[] {
  const year = Number(moveId.slice(0, 4));
  const month = Number(moveId.slice(4, 6));
  const previous = month === 1 ? yyyymm(year - 1, 12) : yyyymm(year, month - 1);
  return [moveId.slice(0, 6), previous];
}

/** The home key an old pool tag names (`{org:<o>}` or `{user:<u>}`), or `null` for a tag this layout never made. */
function homeOfTag(layout: KeyLayout, user: string, tag: string): { key: string; org: string | null } | null {
  if (tag === layout.poolTag(user, null)) return { key: layout.userConfigKey(user, null), org: null };
  const match = /^\{org:([^:{}]+)\}$/.exec(tag);
  if (match === null || layout.poolTag(user, match[1]!) !== tag) return null;
  return { key: layout.userConfigKey(user, match[1]!), org: match[1]! };
}

/** The user's own counters of the carried months in one home, with their entries. */
async function homeCounters(client: RedisClient, layout: KeyLayout, user: string, org: string | null, months: readonly string[]) {
  const keys: string[] = [];
  for (const month of months) {
    for (const key of await scanKeys(client, homeUsagePattern(layout, user, org, month))) {
      const parsed = layout.parseUsageKey(key);
      if (parsed !== null && parsed.owner.type === 'user' && parsed.owner.name === user && parsed.home === org) keys.push(key);
    }
  }
  const counters: Array<{ key: string; parsed: NonNullable<ReturnType<KeyLayout['parseUsageKey']>>; entries: Array<[string, string]> }> = [];
  for (const key of keys) {
    let flat: string[];
    try {
      flat = await client.zrange(key, 0, '-1', 'WITHSCORES');
    } catch (error) {
      throw toTollgateError(error);
    }
    const entries: Array<[string, string]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push([flat[i]!, flat[i + 1]!]);
    counters.push({ key, parsed: layout.parseUsageKey(key)!, entries });
  }
  return counters;
}

/** The live request ids of the user in one home: key suffix, value and remaining TTL. */
async function homeRequestIds(client: RedisClient, layout: KeyLayout, user: string, org: string | null) {
  const pattern = layout.requestIdKey(globLiteral(user), org === null ? null : globLiteral(org), '*');
  const prefix = layout.requestIdKey(user, org, '');
  const ids: Array<{ id: string; value: string; ttlMs: number }> = [];
  for (const key of await scanKeys(client, pattern)) {
    if (!key.startsWith(prefix)) continue;
    let value: string | null;
    let ttlMs: number;
    try {
      [value, ttlMs] = await Promise.all([client.get(key), client.pttl(key)]);
    } catch {
      continue; // not a request id (another type): nothing to carry
    }
    if (value !== null && ttlMs > 0) ids.push({ id: key.slice(prefix.length), value, ttlMs });
  }
  return ids;
}

/**
 * Step 4 for a move whose new home is `home`: if `home` records the move that made it and the
 * old home is still frozen for it, retire the old home. Answers whether anything was done.
 */
async function finishOldHome(client: RedisClient, layout: KeyLayout, user: string, home: RawHash, newTag: string, newOrg: string | null): Promise<boolean> {
  const marker = home[MOVED_FROM_FIELD];
  if (marker === undefined) return false;
  const bar = marker.lastIndexOf('|');
  const old = homeOfTag(layout, user, marker.slice(0, bar));
  const moveId = marker.slice(bar + 1);
  if (old === null || bar < 0) return false;
  const oldHash = await readHash(client, old.key);
  if (oldHash[MOVING_TO_FIELD] !== newTag || oldHash[MOVE_ID_FIELD] !== moveId) return false;
  await leaveOldHome(client, layout, user, old, oldHash, newTag, newOrg, moveId);
  return true;
}

async function leaveOldHome(
  client: RedisClient,
  layout: KeyLayout,
  user: string,
  old: { key: string; org: string | null },
  oldHash: RawHash,
  newTag: string,
  newOrg: string | null,
  moveId: string,
): Promise<void> {
  const counters = await homeCounters(client, layout, user, old.org, carriedMonths(moveId));
  const lone = old.key === layout.directoryKey(user);
  const step = lone
    ? {
        tag: newTag,
        id: moveId,
        mode: 'strip',
        del: Object.keys(oldHash).filter((field) => field !== ORGANIZATION_FIELD),
        set: newOrg === null ? [] : [[ORGANIZATION_FIELD, newOrg]],
      }
    : { tag: newTag, id: moveId, mode: 'delete', del: [], set: [] };
  const keys = [old.key, ...counters.map((counter) => counter.key)];
  const status = await statusOf(define(client, LEAVE_HOME)(keys.length, ...keys, JSON.stringify(step)), 'leave-home');
  if (status === 3) throw new InvalidConfigError(old.key, '', 'holds the wrong Redis type; nothing was written');
  if (status !== 1 && status !== 2) throw new UnexpectedReplyError(`leave-home: unknown status ${status}`);
}

/**
 * Moves `user` to `org` (`null`: out of any org) in the cluster layout, or finishes a move that
 * stopped half-way. Steps (docs/cluster.md): (1) freeze the old home (`moving_to` = the new
 * pool's tag, `move_id`); (2) write the new home with the decision fields, and carry the user's
 * own counters of this month and the previous one and its live request ids into it, in one
 * script in the new slot that also records `moved_from` so a re-run adds nothing twice; (3)
 * point the directory at the new org; (4) retire the old home and the carried counters. Each
 * step checks what the one before left, so running the same move again finishes it.
 * `stopAfterStep` (tests) stops after that step, as a crash would.
 */
export async function moveHome(
  client: RedisClient,
  layout: KeyLayout,
  user: string,
  org: string | null,
  fields: (oldHash: RawHash) => HomeFields,
  nowMs: number,
  stopAfterStep = 4,
): Promise<MoveOutcome> {
  const directoryKey = layout.directoryKey(user);
  const directory = await readHash(client, directoryKey);
  if (Object.keys(directory).length === 0) throw new NotFoundError(ERROR_CODES.unknownUser, `unknown user: no ${directoryKey} hash`);
  const rawOrg = directory[ORGANIZATION_FIELD];
  const currentOrg = rawOrg === undefined || rawOrg === '' ? null : rawOrg;
  const newTag = layout.poolTag(user, org);
  const newKey = layout.userConfigKey(user, org);
  const unchanged: MoveOutcome = { result: 'unchanged', moveId: null, carriedKeys: 0, carriedRequestIds: 0 };

  if (currentOrg === org) {
    // Steps 1-3 are done (or there was no move): finish step 4 if it is pending.
    const home = newKey === directoryKey ? directory : await readHash(client, newKey);
    if (home[MOVING_TO_FIELD] !== undefined) {
      throw new ConflictError(
        ERROR_CODES.concurrentChange,
        `user ${user} is moving to ${home[MOVING_TO_FIELD]} (${newKey} field ${MOVING_TO_FIELD}): finish that move first by running the command that started it again`,
      );
    }
    const finished = await finishOldHome(client, layout, user, home, newTag, org);
    return finished ? { ...unchanged, result: 'moved', moveId: home[MOVED_FROM_FIELD]!.split('|').pop()! } : unchanged;
  }

  const oldKey = layout.userConfigKey(user, currentOrg);
  const before = oldKey === directoryKey ? directory : await readHash(client, oldKey);
  if (Object.keys(before).length === 0) {
    throw new InvalidConfigError(directoryKey, ORGANIZATION_FIELD, `names org ${currentOrg ?? ''} but ${oldKey} does not exist: set it back, or recreate the member hash, then move`);
  }

  // Step 1: freeze the old home, or pick up the move it is frozen for.
  let moveId = before[MOVE_ID_FIELD];
  const pending = before[MOVING_TO_FIELD];
  if (pending === undefined) {
    moveId = `${new Date(nowMs).toISOString().slice(0, 7).replace('-', '')}-${randomBytes(6).toString('hex')}`;
    await configWrite(
      client,
      {
        key: oldKey,
        mode: 'update',
        expect: { [MOVING_TO_FIELD]: null, [MOVE_ID_FIELD]: null, ...(currentOrg === null ? {} : { [ORGANIZATION_FIELD]: currentOrg }) },
        set: { [MOVING_TO_FIELD]: newTag, [MOVE_ID_FIELD]: moveId },
      },
      'freezing the old home',
    );
  } else if (pending !== newTag || moveId === undefined || !/^\d{6}-[0-9a-f]{12}$/.test(moveId)) {
    throw new ConflictError(
      ERROR_CODES.concurrentChange,
      `user ${user} is moving to ${pending} (${oldKey} field ${MOVING_TO_FIELD}): finish that move first by running the same command again`,
    );
  }
  const id = moveId as string;
  const stopped: MoveOutcome = { result: 'moved', moveId: id, carriedKeys: 0, carriedRequestIds: 0 };
  if (stopAfterStep <= 1) return stopped;
  const oldHash = await readHash(client, oldKey);
  if (oldHash[MOVING_TO_FIELD] !== newTag || oldHash[MOVE_ID_FIELD] !== id) {
    throw new ConflictError(ERROR_CODES.concurrentChange, `${oldKey} changed while moving ${user}; nothing more was written, run the command again`);
  }

  // Step 2: the new home, the carried counters and request ids, once (the marker).
  const extra = fields(oldHash);
  const carried = new Set([...NOT_CARRIED, ...extra.drop]);
  const set = Object.entries(oldHash).filter(([field]) => !carried.has(field));
  set.push(...Object.entries(extra.set));
  const counters = await homeCounters(client, layout, user, currentOrg, carriedMonths(id));
  const ids = await homeRequestIds(client, layout, user, currentOrg);
  const keys = [newKey];
  const adds: Array<[number, string, string]> = [];
  for (const counter of counters) {
    const { parsed } = counter;
    keys.push(layout.usageKey(parsed.owner, org, parsed.serviceType, parsed.metric, parsed.yyyymm));
    for (const [day, score] of counter.entries) adds.push([keys.length, day, score]);
  }
  const idEntries: Array<[number, string, number]> = [];
  for (const entry of ids) {
    keys.push(layout.requestIdKey(user, org, entry.id));
    idEntries.push([keys.length, entry.value, entry.ttlMs]);
  }
  const move = {
    mode: org === null ? 'lone' : 'member',
    from: currentOrg ?? '',
    marker: `${layout.poolTag(user, currentOrg)}|${id}`,
    set,
    del: org === null ? [ORGANIZATION_FIELD, MOVING_TO_FIELD, MOVE_ID_FIELD] : [],
    adds,
    ids: idEntries,
  };
  const status = await statusOf(define(client, MOVE_HOME)(keys.length, ...keys, JSON.stringify(move)), 'move-home');
  if (status === 3) {
    throw new ConflictError(ERROR_CODES.alreadyExists, `${newKey} already exists and was not made by this move: remove it or move ${user} elsewhere; the old home stays frozen until then`);
  }
  if (status === 4) throw new ConflictError(ERROR_CODES.concurrentChange, `${directoryKey} changed while moving ${user}; run the command again`);
  if (status === 5) throw new InvalidConfigError(keys.join(', '), '', 'a key of the new home holds the wrong Redis type; nothing was written');
  if (status !== 1 && status !== 2) throw new UnexpectedReplyError(`move-home: unknown status ${status}`);
  if (stopAfterStep <= 2) return { ...stopped, carriedKeys: counters.length, carriedRequestIds: ids.length };

  // Step 3: point the directory at the new org (for a user becoming lone, step 2 did it; for a
  // lone user joining, the directory is the old home and step 4 does it in the same script).
  if (org !== null && currentOrg !== null) {
    await configWrite(
      client,
      { key: directoryKey, mode: 'update', expect: { [ORGANIZATION_FIELD]: currentOrg }, set: { [ORGANIZATION_FIELD]: org } },
      'pointing the directory',
    );
  }
  if (stopAfterStep <= 3) return { ...stopped, carriedKeys: counters.length, carriedRequestIds: ids.length };
  // Step 4: retire the old home.
  await leaveOldHome(client, layout, user, { key: oldKey, org: currentOrg }, oldHash, newTag, org, id);
  return { result: 'moved', moveId: id, carriedKeys: counters.length, carriedRequestIds: ids.length };
}

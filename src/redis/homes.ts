// Where a user's decision fields live in a key layout (its "home"), and the names operators' tools list and scan.
import { MOVING_FIELD, ORGANIZATION_FIELD, parseOrganization, type RawHash } from '../core/config.js';
import { ERROR_CODES, NotFoundError } from '../core/errors.js';
import { globLiteral, type OwnerType } from '../core/keys.js';
import type { KeyLayout } from '../core/layout.js';
import type { Metric } from '../core/quota-kinds.js';
import { readHash } from './accounts.js';
import type { RedisClient } from './connection.js';

/** Field set on a home hash while its user moves away: the tag of the pool it moves to (docs/cluster.md). */
export const MOVING_TO_FIELD = MOVING_FIELD;
/** Field set with {@link MOVING_TO_FIELD}: the id of that move, so a re-run finishes the same move. */
export const MOVE_ID_FIELD = 'move_id';
/** Field written on a new home by the move that made it: `<old pool tag>|<move id>`. */
export const MOVED_FROM_FIELD = 'moved_from';
/** Fields of the move protocol itself: never copied from one home to the next. */
export const MOVE_FIELDS: readonly string[] = Object.freeze([MOVING_TO_FIELD, MOVE_ID_FIELD, MOVED_FROM_FIELD]);

/** A user's home as read now. In the CARTO layout the directory and the home are one hash. */
export interface Home {
  readonly user: string;
  readonly directoryKey: string;
  readonly directory: RawHash;
  /** The org named by the directory, or `null`. */
  readonly org: string | null;
  /** The hash holding the user's decision fields. */
  readonly key: string;
  readonly hash: RawHash;
  /** The hash-tag of the user's pool (`''` in the CARTO layout). */
  readonly tag: string;
}

/**
 * Reads a user's directory entry, then (cluster layout, org member) its member hash. Throws
 * {@link NotFoundError} `ERR_TOLLGATE_UNKNOWN_USER` when the directory entry does not exist; a
 * member whose member hash is missing answers an empty `hash` (a move half-done or a hand edit:
 * `tollgate user set-org` finishes it).
 */
export async function readHome(client: RedisClient, layout: KeyLayout, user: string): Promise<Home> {
  const directoryKey = layout.directoryKey(user);
  const directory = await readHash(client, directoryKey);
  if (Object.keys(directory).length === 0) throw new NotFoundError(ERROR_CODES.unknownUser, `unknown user: no ${directoryKey} hash`);
  const org = parseOrganization(directoryKey, directory[ORGANIZATION_FIELD]);
  const key = layout.userConfigKey(user, org);
  const hash = key === directoryKey ? directory : await readHash(client, key);
  return { user, directoryKey, directory, org, key, hash, tag: layout.poolTag(user, org) };
}

/** The part of a layout's name for one user or org around its name: `rails:users:{user:` and `}`. */
function nameFrame(layout: KeyLayout, type: OwnerType): { before: string; after: string } {
  const mark = '\u0000';
  const probe = type === 'user' ? layout.directoryKey(mark) : layout.orgConfigKey(mark);
  const at = probe.indexOf(mark);
  return { before: probe.slice(0, at), after: probe.slice(at + 1) };
}

/** The SCAN pattern matching every user directory entry (or every org hash) of a layout. */
export function configKeyPattern(layout: KeyLayout, type: OwnerType): string {
  const { before, after } = nameFrame(layout, type);
  return `${globLiteral(before)}*${globLiteral(after)}`;
}

/** The SCAN pattern of the directory entries (or org hashes) whose name contains `query` (a checked name or `''`). */
export function configKeySearchPattern(layout: KeyLayout, type: OwnerType, query: string): string {
  const { before, after } = nameFrame(layout, type);
  return `${globLiteral(before)}*${globLiteral(query)}*${globLiteral(after)}`;
}

/** The user (or org) name a directory entry (or org hash) key names, or `null` for another key. */
export function nameOfConfigKey(layout: KeyLayout, type: OwnerType, key: string): string | null {
  const { before, after } = nameFrame(layout, type);
  if (!key.startsWith(before) || !key.endsWith(after) || key.length < before.length + after.length + 1) return null;
  const name = key.slice(before.length, key.length - after.length);
  return /[:{}]/.test(name) ? null : name;
}

/** The SCAN pattern of a user's own usage keys in one home (`org`: the org it was a member of) for one month. */
export function homeUsagePattern(layout: KeyLayout, user: string, org: string | null, yyyymm: string): string {
  return layout.usageKey({ type: 'user', name: globLiteral(user) }, org === null ? null : globLiteral(org), '*', '*' as Metric, yyyymm);
}

/** The SCAN pattern of the member hashes of an org (cluster layout), or `null` in a layout without them. */
export function memberKeyPattern(layout: KeyLayout, org: string): string | null {
  const probe = layout.userConfigKey('\u0000', org);
  if (probe === layout.directoryKey('\u0000')) return null;
  const at = probe.indexOf('\u0000');
  return `${globLiteral(probe.slice(0, at))}*${globLiteral(probe.slice(at + 1))}`;
}

/** The user a member hash key names, or `null`. */
export function memberOfKey(layout: KeyLayout, org: string, key: string): string | null {
  const probe = layout.userConfigKey('\u0000', org);
  const at = probe.indexOf('\u0000');
  const before = probe.slice(0, at);
  const after = probe.slice(at + 1);
  if (!key.startsWith(before) || !key.endsWith(after)) return null;
  const name = key.slice(before.length, key.length - after.length);
  return name === '' || /[:{}]/.test(name) ? null : name;
}

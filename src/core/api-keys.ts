// API keys as a user hash stores them: CARTO's map_key, Tollgate's named SHA-256 digests, and constant-time matching.
import { hash, timingSafeEqual } from 'node:crypto';

/**
 * A user hash as Redis returns it (the same shape as config.ts's RawHash). Declared here, not
 * imported: config.ts re-exports this module's field names, and the import made a cycle.
 */
type RawHash = Readonly<Record<string, string>>;

/** CARTO's field holding the user's API key in clear. */
export const MAP_KEY_FIELD = 'map_key';
/** Tollgate's first, unnamed digest field; read as the key named {@link LEGACY_KEY_NAME}. */
export const API_KEY_SHA256_FIELD = 'api_key_sha256';
/** The name the unnamed {@link API_KEY_SHA256_FIELD} is listed under. */
export const LEGACY_KEY_NAME = 'default';
/** The name `map_key` is listed under. */
export const MAP_KEY_NAME = 'map_key';
/** `api_key_sha256:<name>`: lowercase hex SHA-256 of a named key. */
export const NAMED_DIGEST_PREFIX = 'api_key_sha256:';
/** `api_key_expires_at:<name>`: epoch ms from which the named key is refused (a rotation's overlap end). */
export const EXPIRES_AT_PREFIX = 'api_key_expires_at:';

/** Longest API key accepted anywhere; a longer one is refused before it is hashed. */
export const MAX_API_KEY_LENGTH = 512;

/** `api_key_created_at:<name>`: epoch ms the named key was made (shown to operators, never used to authenticate). */
export const CREATED_AT_PREFIX = 'api_key_created_at:';

/** The hash fields of one key name: its digest (or `map_key`), its expiry and its creation time. */
export function apiKeyFields(name: string): { readonly key: string; readonly expiresAt: string; readonly createdAt: string } {
  const key = name === MAP_KEY_NAME ? MAP_KEY_FIELD : name === LEGACY_KEY_NAME ? API_KEY_SHA256_FIELD : NAMED_DIGEST_PREFIX + name;
  return { key, expiresAt: EXPIRES_AT_PREFIX + name, createdAt: CREATED_AT_PREFIX + name };
}

/** What a key name may be: it becomes part of a hash field name. */
export const KEY_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const SHA256_HEX = /^[0-9a-f]{64}$/i;
const EPOCH_MS = /^[0-9]{1,15}$/;

/**
 * SHA-256 of a string (as UTF-8) as bytes: the one digest helper for keys and tokens. It runs
 * once per guarded request, so it takes the one-shot `crypto.hash` (Node 20.12+) as a 'binary'
 * (latin1) string, one byte per character: on Node 20 the `'buffer'` encoding falls back to a Hash
 * object and costs three times as much (1.5 against 0.5 µs).
 */
export function sha256(value: string): Buffer {
  return Buffer.from(hash('sha256', value, 'binary'), 'binary');
}

/** Lowercase hex SHA-256 of a string, as stored in the digest fields. */
export function sha256Hex(value: string): string {
  return sha256(value).toString('hex');
}

/** One key a user hash holds. A garbled digest or expiry makes the key unusable (`usable: false`), never an error on the request path. */
export interface StoredApiKey {
  /** `map_key`, `default` for the unnamed digest, or the key's name. */
  readonly name: string;
  /** The hash field holding the key or its digest. */
  readonly field: string;
  readonly form: 'clear' | 'sha256';
  /** SHA-256 of the key; `null` when the stored value is empty or garbled. */
  readonly digest: Buffer | null;
  /** Epoch ms from which the key is refused, or `null` for no end. */
  readonly expiresAtMs: number | null;
  /** False when the stored digest or expiry cannot be read: such a key never matches. */
  readonly usable: boolean;
}

/** True for every field of a user hash that authentication depends on (so a decision can re-check them). */
export function isCredentialField(field: string): boolean {
  return (
    field === MAP_KEY_FIELD ||
    field === API_KEY_SHA256_FIELD ||
    field.startsWith(NAMED_DIGEST_PREFIX) ||
    field.startsWith(EXPIRES_AT_PREFIX)
  );
}

function expiryOf(hash: RawHash, name: string): { expiresAtMs: number | null; ok: boolean } {
  const raw = hash[EXPIRES_AT_PREFIX + name];
  if (raw === undefined || raw === '') return { expiresAtMs: null, ok: true };
  if (!EPOCH_MS.test(raw)) return { expiresAtMs: null, ok: false };
  return { expiresAtMs: Number(raw), ok: true };
}

function digestOf(raw: string | undefined): Buffer | null {
  if (raw === undefined || !SHA256_HEX.test(raw)) return null;
  return Buffer.from(raw, 'hex');
}

/** Every key a user hash holds, `map_key` first, then the unnamed digest, then named ones by name. */
export function storedApiKeys(hash: RawHash): StoredApiKey[] {
  const keys: StoredApiKey[] = [];
  const mapKey = hash[MAP_KEY_FIELD];
  if (mapKey !== undefined && mapKey !== '') {
    keys.push({ name: MAP_KEY_NAME, field: MAP_KEY_FIELD, form: 'clear', digest: sha256(mapKey), expiresAtMs: null, usable: true });
  }
  const digestKey = (name: string, field: string): void => {
    const raw = hash[field];
    if (raw === undefined || raw === '') return;
    const digest = digestOf(raw);
    const expiry = expiryOf(hash, name);
    keys.push({ name, field, form: 'sha256', digest, expiresAtMs: expiry.expiresAtMs, usable: digest !== null && expiry.ok });
  };
  digestKey(LEGACY_KEY_NAME, API_KEY_SHA256_FIELD);
  const named = Object.keys(hash)
    .filter((field) => field.startsWith(NAMED_DIGEST_PREFIX))
    .map((field) => field.slice(NAMED_DIGEST_PREFIX.length))
    .filter((name) => KEY_NAME.test(name) && name !== LEGACY_KEY_NAME)
    .sort();
  for (const name of named) digestKey(name, NAMED_DIGEST_PREFIX + name);
  return keys;
}

/** A digest no key has: compared against when there is nothing real to compare with, so timing does not tell. */
const NO_MATCH = Buffer.alloc(32);
/** Comparisons made at least, whatever the user holds, so a user with fewer keys (or none) answers as fast as one with more. */
export const MIN_COMPARISONS = 4;

/**
 * Whether `presented` (a {@link sha256} digest) is one of `keys` and not expired at `nowMs`.
 * Every stored key is compared in constant time, at least {@link MIN_COMPARISONS} comparisons
 * always run, and no comparison stops early, so timing tells neither which key matched nor
 * whether the user exists (pass `[]` for an unknown user).
 */
export function apiKeyMatches(presented: Buffer, keys: readonly StoredApiKey[], nowMs: number): boolean {
  let matched = false;
  const rounds = Math.max(keys.length, MIN_COMPARISONS);
  for (let i = 0; i < rounds; i += 1) {
    const key = keys[i];
    const digest = key?.digest ?? NO_MATCH;
    const equal = timingSafeEqual(presented.length === 32 ? presented : NO_MATCH, digest);
    const live = key !== undefined && key.usable && (key.expiresAtMs === null || nowMs < key.expiresAtMs);
    matched = (equal && live) || matched;
  }
  return matched;
}

/** A key shown to an operator: its last four characters only (a digest shows none of the key). */
export function maskedKey(key: string): string {
  return key.length <= 8 ? '****' : `****${key.slice(-4)}`;
}

// Per-test names, config writers, keyspace snapshots and cleanup that touches only the test's own keys.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterEach } from 'vitest';

/** A name no other test uses, safe as a key part. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Writes `rails:users:<user>` (replacing it). */
export async function writeUser(client: Redis, user: string, fields: Record<string, string>): Promise<void> {
  await client.del(`rails:users:${user}`);
  if (Object.keys(fields).length > 0) await client.hset(`rails:users:${user}`, fields);
}

/** Writes `rails:orgs:<org>` (replacing it). */
export async function writeOrg(client: Redis, org: string, fields: Record<string, string>): Promise<void> {
  await client.del(`rails:orgs:${org}`);
  if (Object.keys(fields).length > 0) await client.hset(`rails:orgs:${org}`, fields);
}

async function scanAll(client: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

async function dumpKey(client: Redis, key: string): Promise<unknown> {
  const type = await client.type(key);
  switch (type) {
    case 'hash':
      return { type, value: await client.hgetall(key) };
    case 'zset':
      return { type, value: await client.zrange(key, 0, '-1', 'WITHSCORES') };
    case 'string':
      return { type, value: await client.get(key) };
    case 'set':
      return { type, value: (await client.smembers(key)).sort() };
    case 'list':
      return { type, value: await client.lrange(key, 0, -1) };
    default:
      return { type };
  }
}

/**
 * Everything stored under keys that mention any of `names`, plus Tollgate's own keys,
 * as a plain object: compare two snapshots to prove nothing changed.
 */
export async function snapshot(client: Redis, names: string[]): Promise<Record<string, unknown>> {
  const patterns = [...names.map((name) => `*${name}*`), 'tollgate:*'];
  const keys = [...new Set((await Promise.all(patterns.map((p) => scanAll(client, p)))).flat())].sort();
  const entries = await Promise.all(keys.map(async (key) => [key, await dumpKey(client, key)] as const));
  return Object.fromEntries(entries);
}

/** Deletes every key that mentions one of `names`; never touches anything else. */
export async function cleanup(client: Redis, names: string[]): Promise<void> {
  for (const name of names) {
    const keys = await scanAll(client, `*${name}*`);
    if (keys.length > 0) await client.del(...keys);
  }
}

/**
 * Returns a maker of unique names; after each test, every key mentioning one of the
 * names made during it is deleted (and nothing else).
 */
export function useNames(client: () => Redis): (prefix: string) => string {
  const names: string[] = [];
  afterEach(async () => cleanup(client(), names.splice(0)));
  return (prefix) => {
    const value = uniqueName(prefix);
    names.push(value);
    return value;
  };
}

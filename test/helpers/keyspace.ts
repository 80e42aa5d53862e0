// Cheap proof that nothing was written: Redis' own count of changes, for tests that check thousands of calls.
import type { Redis } from 'ioredis';

/**
 * Writes Redis has applied since its last save (INFO persistence `rdb_changes_since_last_save`):
 * any key created, changed, expired or deleted moves it. On a server without `save` points (the
 * private ones the tests start) it only grows, so equal readings around a call prove the call
 * wrote nothing anywhere, which the snapshot helpers of fixtures.ts show for a few names only.
 */
export async function keyspaceChanges(client: Redis): Promise<number> {
  const info = await client.info('persistence');
  const match = /rdb_changes_since_last_save:(\d+)/.exec(info);
  if (match === null) throw new Error('INFO persistence has no rdb_changes_since_last_save');
  return Number(match[1]);
}

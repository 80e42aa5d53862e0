// Writes one fail-open journal entry's usage increments to Redis exactly once, using WATCH/MULTI on a marker key.
import { Redis } from 'ioredis';
import type { Increment } from '../core/accounting.js';
import { journalMarkerKey } from '../core/keys.js';
import type { RedisClient } from './connection.js';

/** A new connection with the same settings as `client`, for WATCH, which binds to a connection. */
export function dedicatedConnection(client: RedisClient): RedisClient {
  // Narrowed per branch: TypeScript cannot call `duplicate` on the Redis | Cluster union.
  return client instanceof Redis ? client.duplicate() : client.duplicate();
}

/** How long a written entry's marker is kept: far longer than any retry of the same process. */
export const JOURNAL_MARKER_TTL_MS = 7 * 24 * 3_600_000;

/** What {@link writeJournalEntry} did. */
export type WriteBackStatus = 'written' | 'already_written';

/**
 * Applies `increments` at day member `day` and sets the entry's marker in one MULTI, unless
 * the marker already exists. `client` must be a connection of its own (WATCH is per
 * connection) and the keys must share a node (single-node Redis, or hash-tagged keys).
 * Throws whatever the client throws; the caller maps it.
 */
export async function writeJournalEntry(
  client: RedisClient,
  entryId: string,
  day: string,
  increments: readonly Increment[],
): Promise<WriteBackStatus> {
  const marker = journalMarkerKey(entryId);
  // EXEC answers null when the marker changed after WATCH (another process wrote it): look again.
  for (;;) {
    await client.watch(marker);
    if ((await client.exists(marker)) === 1) {
      await client.unwatch();
      return 'already_written';
    }
    const transaction = client.multi().set(marker, '1', 'PX', JOURNAL_MARKER_TTL_MS);
    for (const increment of increments) transaction.zincrby(increment.key, increment.delta, day);
    const results = await transaction.exec();
    if (results === null) continue;
    const failed = results.find(([error]) => error !== null);
    if (failed) throw failed[0];
    return 'written';
  }
}

// Writes one fail-open journal entry's usage increments to Redis exactly once (lua/apply-once.lua).
import type { Increment } from '../core/accounting.js';
import { InvalidConfigError } from '../core/errors.js';
import { journalMarkerKey } from '../core/keys.js';
import type { RedisClient } from './connection.js';
import { defineScripts, runApplyOnce } from './scripts.js';

/** How long a written entry's marker is kept: far longer than any retry of the same process. */
export const JOURNAL_MARKER_TTL_MS = 7 * 24 * 3_600_000;

/** What {@link writeJournalEntry} did. */
export type WriteBackStatus = 'written' | 'already_written';

/**
 * Applies `increments` at day member `day` and marks the entry written, in one atomic step,
 * unless the marker already exists. Throws {@link InvalidConfigError} when a key holds the
 * wrong type (nothing written); anything the client throws passes through for the caller.
 */
export async function writeJournalEntry(
  client: RedisClient,
  entryId: string,
  day: string,
  increments: readonly Increment[],
): Promise<WriteBackStatus> {
  defineScripts(client);
  const markerKey = journalMarkerKey(entryId);
  const reply = await runApplyOnce(client, { markerKey, day, markerTtlMs: JOURNAL_MARKER_TTL_MS, increments });
  switch (reply) {
    case 'applied':
      return 'written';
    case 'already_applied':
      return 'already_written';
    case 'wrong_type':
      throw new InvalidConfigError(markerKey, '', 'a key of this journal entry holds the wrong Redis type; nothing was written');
  }
}

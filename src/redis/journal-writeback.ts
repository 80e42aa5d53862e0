// Writes fail-open journal entries' usage increments to Redis, many per script call, each exactly once (lua/apply-once.lua).
import type { Increment } from '../core/accounting.js';
import { InvalidConfigError } from '../core/errors.js';
import { journalMarkerKey } from '../core/keys.js';
import type { RedisClient } from './connection.js';
import { defineScripts, runApplyOnce } from './scripts.js';

/** How long a written entry's marker is kept: far longer than any retry of the same process. */
export const JOURNAL_MARKER_TTL_MS = 7 * 24 * 3_600_000;

/** Entries written per script call at most: bounds how long one call holds Redis. */
export const JOURNAL_BATCH_MAX = 500;

/** What the write-back did with one entry. */
export type WriteBackStatus = 'written' | 'already_written' | 'wrong_type';

/** One journal write: the increments of an entry (or of one phase of it) under its own marker id. */
export interface JournalWrite {
  /** Names the marker `tollgate:journal:<markerId>`; the same id is never used for other increments. */
  readonly markerId: string;
  /** The marker key when the layout places it elsewhere (cluster: in the pool's slot); default `tollgate:journal:<markerId>`. */
  readonly markerKey?: string;
  /** Writes of one group go in one script call: the pool's hash tag on a cluster. Default `''`. */
  readonly group?: string;
  /** Day member the increments land on, "01".."31". */
  readonly day: string;
  readonly increments: readonly Increment[];
}

/**
 * Applies each write's increments and marks it written, in one atomic script call per
 * {@link JOURNAL_BATCH_MAX} writes, skipping writes whose marker exists. Answers one status
 * per write, in order; a write meeting a key of the wrong type writes nothing ('wrong_type').
 * Anything the client throws passes through for the caller (the batch then may or may not
 * have run: repeating it is safe, the markers see to that).
 */
export async function writeJournalBatch(client: RedisClient, writes: readonly JournalWrite[]): Promise<WriteBackStatus[]> {
  defineScripts(client);
  const statuses: WriteBackStatus[] = new Array<WriteBackStatus>(writes.length);
  const groups = new Map<string, number[]>();
  writes.forEach((write, index) => {
    const group = groups.get(write.group ?? '');
    if (group === undefined) groups.set(write.group ?? '', [index]);
    else group.push(index);
  });
  for (const indexes of groups.values()) {
    for (let start = 0; start < indexes.length; start += JOURNAL_BATCH_MAX) {
      const chunk = indexes.slice(start, start + JOURNAL_BATCH_MAX);
      const replies = await runApplyOnce(client, {
        markerTtlMs: JOURNAL_MARKER_TTL_MS,
        entries: chunk.map((index) => {
          const write = writes[index] as JournalWrite;
          return { markerKey: write.markerKey ?? journalMarkerKey(write.markerId), day: write.day, increments: write.increments };
        }),
      });
      replies.forEach((reply, i) => {
        statuses[chunk[i] as number] = reply === 'applied' ? 'written' : reply === 'already_applied' ? 'already_written' : 'wrong_type';
      });
    }
  }
  return statuses;
}

/**
 * Writes one entry (a batch of one). Throws {@link InvalidConfigError} when a key holds the
 * wrong type (nothing written).
 */
export async function writeJournalEntry(
  client: RedisClient,
  entryId: string,
  day: string,
  increments: readonly Increment[],
): Promise<'written' | 'already_written'> {
  const [status] = await writeJournalBatch(client, [{ markerId: entryId, day, increments }]);
  if (status === 'wrong_type' || status === undefined) {
    throw new InvalidConfigError(journalMarkerKey(entryId), '', 'a key of this journal entry holds the wrong Redis type; nothing was written');
  }
  return status;
}

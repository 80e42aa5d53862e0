// Finds usage scores Tollgate could not have written and removes them, each only if unchanged since it was found.
import { ERROR_CODES, InvalidConfigError, InvalidInputError } from '../core/errors.js';
import type { Owner } from '../core/keys.js';
import { CARTO_LAYOUT, type KeyLayout } from '../core/layout.js';
import { badCountProblem } from '../core/counts.js';
import { toTollgateError, type RedisClient } from './connection.js';
import { pipelineValues, scanBatches } from './scan.js';
import { defineScripts, runUsageRepair } from './scripts.js';

/** One member of a usage sorted set whose score no decision can use. */
export interface GarbledScore {
  readonly key: string;
  readonly member: string;
  /** The score as Redis prints it. */
  readonly score: string;
  /** Why it cannot be a count: negative, fractional, too large, not a number. */
  readonly problem: string;
}

/** Every garbled score among an owner's usage keys, in every home (SCAN, never KEYS; one batch in memory). */
export async function findGarbledScores(client: RedisClient, owner: Owner, layout: KeyLayout = CARTO_LAYOUT): Promise<GarbledScore[]> {
  const found: GarbledScore[] = [];
  for (const pattern of layout.usageKeyPatterns(owner.type, owner.name)) {
    for await (const scanned of scanBatches(client, pattern)) {
      const keys = scanned.keys.filter((key) => {
        const parsed = layout.parseUsageKey(key);
        return parsed !== null && parsed.owner.type === owner.type && parsed.owner.name === owner.name;
      });
      if (keys.length === 0) continue;
      const batch = { node: scanned.node, keys };
      const pipeline = batch.node.pipeline();
      for (const key of batch.keys) pipeline.zrange(key, 0, '-1', 'WITHSCORES');
      let replies: unknown[];
      try {
        replies = pipelineValues(await pipeline.exec());
      } catch (error) {
        const typed = toTollgateError(error);
        if (typed.code === ERROR_CODES.invalidConfig) continue; // a key of another type under the pattern: not a usage set
        throw typed;
      }
      replies.forEach((reply, index) => {
        const flat = reply as string[];
        const key = batch.keys[index] as string;
        for (let i = 0; i < flat.length; i += 2) {
          const problem = badCountProblem(flat[i + 1] as string);
          if (problem !== null) found.push({ key, member: flat[i] as string, score: flat[i + 1] as string, problem });
        }
      });
    }
  }
  return found;
}

/** What {@link removeGarbledScores} did with each score. */
export interface RepairResult {
  readonly removed: readonly GarbledScore[];
  /** Changed since found (someone wrote it): left alone, list again. */
  readonly skipped: readonly GarbledScore[];
}

/**
 * Removes each garbled member (the day counts as 0 from then on), each in one script run that
 * first checks the score is still the one found. Nothing else is touched.
 */
export async function removeGarbledScores(client: RedisClient, scores: readonly GarbledScore[]): Promise<RepairResult> {
  defineScripts(client);
  const removed: GarbledScore[] = [];
  const skipped: GarbledScore[] = [];
  for (const garbled of scores) {
    if (badCountProblem(garbled.score) === null) {
      throw new InvalidInputError(ERROR_CODES.invalidArgument, `${garbled.key} ${garbled.member}: that score is a valid count, not a repair`);
    }
    let reply;
    try {
      reply = await runUsageRepair(client, garbled.key, garbled.member, garbled.score);
    } catch (error) {
      throw toTollgateError(error);
    }
    if (reply === 'wrong_type') throw new InvalidConfigError(garbled.key, '', 'not a sorted set; nothing was written');
    (reply === 'removed' ? removed : skipped).push(garbled);
  }
  return { removed, skipped };
}

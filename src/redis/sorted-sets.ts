// Reads whole sorted sets (usage counters) in one round trip, correctly on a cluster whose slot is moving.
import { isCluster, toTollgateError, type RedisClient } from './connection.js';

/**
 * Every member and score (flat, as WITHSCORES gives them) of each key, in order; a key Redis
 * refused to read (a wrong type) is the ReplyError instead. One pipeline on a single Redis. On a
 * cluster one command per key, because while a slot moves ioredis answers a redirected pipeline
 * by sending all of it to the importing node, where the keys not moved yet read as empty;
 * each command follows its own ASK instead (only a key already moved gets one). Anything else
 * (Redis unreachable) throws a typed error.
 */
export async function readSortedSets(client: RedisClient, keys: readonly string[]): Promise<Array<string[] | Error>> {
  try {
    if (isCluster(client)) {
      return await Promise.all(
        keys.map((key) =>
          client.zrange(key, 0, '-1', 'WITHSCORES').catch((error: unknown) => {
            if (error instanceof Error && error.name === 'ReplyError' && /^WRONGTYPE/.test(error.message)) return error;
            throw error;
          }),
        ),
      );
    }
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.zrange(key, 0, '-1', 'WITHSCORES');
    const results = (await pipeline.exec()) ?? [];
    return keys.map((_, index) => {
      const [error, entries] = results[index] ?? [null, []];
      if (error !== null) {
        if (error.name === 'ReplyError' && /^WRONGTYPE/.test(error.message)) return error;
        throw error;
      }
      return entries as string[];
    });
  } catch (error) {
    throw toTollgateError(error);
  }
}

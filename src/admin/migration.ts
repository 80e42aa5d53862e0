// The operator's `migrate` operation: opens the source and target Redis, copies the keyspace into the other key layout, closes both.
import { ERROR_CODES, InvalidInputError } from '../core/errors.js';
import type { KeyLayoutName } from '../core/layout.js';
import type { MigrationReport } from '../core/migration.js';
import type { RedisTarget } from '../core/redis-target.js';
import { toTollgateError, type RedisClient } from '../redis/connection.js';
import { migrateKeyspace, type MigrationProgress } from '../redis/migrate.js';
import { closeRedis, openRedis } from '../redis/topology.js';

export type { MigrationPhase, MigrationProgress } from '../redis/migrate.js';

/** One migration: from where, to where, into which layout. */
export interface MigrationRequest {
  /** Where the keyspace is now (the CLI's usual Redis: `--redis`, REDIS_CLUSTER, ...). */
  readonly source: RedisTarget;
  /** Where it goes. A cluster target only takes the cluster layout. */
  readonly target: RedisTarget;
  readonly to: KeyLayoutName;
  readonly dryRun: boolean;
  /** Connect timeout of both clients. */
  readonly timeoutMs: number;
  readonly onProgress?: (progress: MigrationProgress) => void;
}

async function opened(target: RedisTarget, timeoutMs: number): Promise<RedisClient> {
  const client = openRedis(target, { timeoutMs });
  try {
    // A cluster client knows its masters (to SCAN each) only once it has the slot map.
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw toTollgateError(error);
  }
  return client;
}

/**
 * Copies the Tollgate keys of `request.source` into `request.target` in the layout
 * `request.to` (docs/cluster.md, "tollgate migrate"); see {@link migrateKeyspace}.
 */
export async function runMigration(request: MigrationRequest): Promise<MigrationReport> {
  if (request.to === 'carto' && request.target.kind === 'cluster') {
    throw new InvalidInputError(
      ERROR_CODES.invalidArgument,
      '--to carto needs a single Redis or Sentinel target: the CARTO layout puts the keys of one decision in several hash slots, which a Redis Cluster refuses',
    );
  }
  const source = await opened(request.source, request.timeoutMs);
  try {
    const target = await opened(request.target, request.timeoutMs);
    try {
      return await migrateKeyspace({
        to: request.to,
        source,
        target,
        dryRun: request.dryRun,
        ...(request.onProgress === undefined ? {} : { onProgress: request.onProgress }),
      });
    } finally {
      await closeRedis(target);
    }
  } finally {
    await closeRedis(source);
  }
}

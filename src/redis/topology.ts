// Opens the ioredis client for a RedisTarget (one server, Sentinel, Cluster) and parses the `redis` option of Tollgate, refusing a Cluster until the cluster layout exists.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import type { RedisTarget } from '../core/redis-target.js';
import { connect, isCluster, isRedisClient, type RedisClient } from './connection.js';

/**
 * ioredis settings fail-open relies on. With the defaults, a command issued while Redis is
 * away waits in an offline queue (or is re-sent after a reconnect) and may run after the
 * caller gave up on it: counted by Redis *and* by the fail-open journal. With these, such a
 * command fails at once and is never sent.
 */
export const FAIL_OPEN_CLIENT_OPTIONS = Object.freeze({
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
});

/** How {@link openRedis} configures the client. */
export interface OpenRedisOptions {
  /** Connect timeout, and the bound Tollgate puts on each call. */
  readonly timeoutMs: number;
  /** Never queue or re-send a command (what fail-open needs, see fail-open-support.ts). Default false. */
  readonly failOpen?: boolean;
}

/**
 * Sentinel failover: a command that reaches the old master after it was demoted answers
 * READONLY. Nothing was written (a script stops at its first write), so reconnecting
 * through the sentinels and sending it again to the new master is safe; decide.lua's
 * reservation id and deadline keep a re-sent admission from counting twice or late.
 */
const resendOnReadonly = (error: Error): 2 | false => (error.message.startsWith('READONLY') ? 2 : false);

/**
 * Opens an ioredis client for `target`, configured as Tollgate expects: fail fast on
 * connect, one retry per command, reconnect in the background, and for Sentinel follow a
 * failover as soon as the sentinels announce it (`failoverDetector`). The client connects
 * lazily, on its first command or `connect()`.
 */
export function openRedis(target: RedisTarget, options: OpenRedisOptions): RedisClient {
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.timeoutMs,
    maxRetriesPerRequest: 1,
    // One socket write per turn of the event loop, not one per command (see connect()).
    enableAutoPipelining: true,
    // Keep reconnecting in the background; each call is still bounded by its own timeout.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    ...(options.failOpen ? FAIL_OPEN_CLIENT_OPTIONS : {}),
  };
  let client: RedisClient;
  switch (target.kind) {
    case 'single':
      client = new Redis(target.url, common);
      break;
    case 'sentinel':
      client = new Redis({
        ...common,
        sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
        name: target.name,
        failoverDetector: true,
        reconnectOnError: resendOnReadonly,
      });
      break;
    case 'cluster': {
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        redisOptions: { connectTimeout: options.timeoutMs },
        maxRedirections: 16,
        enableAutoPipelining: true,
        clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2000),
        ...(options.failOpen ? { enableOfflineQueue: false } : {}),
      };
      client = new Cluster(target.nodes.map(({ host, port }) => ({ host, port })), clusterOptions);
      break;
    }
  }
  // Failures reach callers as typed errors from the call that needed Redis; without a
  // listener ioredis would also print every reconnect attempt.
  client.on('error', () => undefined);
  return client;
}

/**
 * Why a Redis Cluster needs the cluster key layout: decide.lua reads and writes a user's config
 * and counters and its org's in one script, and the CARTO layout puts them in different hash
 * slots (a cluster answers CROSSSLOT). The cluster layout (docs/cluster.md) puts every key of
 * one decision in its pool's slot; refusing at construction beats failing every call.
 */
export const CLUSTER_NEEDS_LAYOUT =
  "a Redis Cluster needs the cluster key layout (docs/cluster.md; option keyLayout: 'cluster'), which keeps every key of one decision in one hash slot; " +
  'the CARTO layout spreads a user and its org over several slots, so every decision would fail with CROSSSLOT. ' +
  'Copy a CARTO keyspace into it with `tollgate migrate --to cluster`';

const url = z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL');
const hostPort = z.strictObject({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65_535) });

/**
 * The `redis` option of `new Tollgate()`: a `redis://` URL, a {@link RedisTarget} (as
 * `redisTargetFromEnv` returns it), an ioredis client, or a list of cluster seed URLs.
 * A cluster (a Cluster client, a cluster target, seed URLs) needs the cluster key layout
 * ({@link isClusterOption}, {@link CLUSTER_NEEDS_LAYOUT}).
 */
export const redisOption = z
  .union([
    url,
    z.array(url).min(1, 'must name at least one cluster seed'),
    z.custom<RedisClient>((value) => isRedisClient(value), 'must be an ioredis client'),
    z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('single'), url }),
      z.strictObject({ kind: z.literal('sentinel'), sentinels: z.array(hostPort).min(1), name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/) }),
      z.strictObject({ kind: z.literal('cluster'), nodes: z.array(hostPort).min(1) }),
    ]),
  ])
  .transform((value) => value as string | readonly string[] | RedisClient | RedisTarget);

const isSeedList = (value: unknown): value is readonly string[] => Array.isArray(value);

/** Whether a parsed `redis` option names a Redis Cluster. */
export function isClusterOption(value: string | readonly string[] | RedisClient | RedisTarget): boolean {
  if (typeof value === 'string') return false;
  if (isSeedList(value)) return true;
  if (isRedisClient(value)) return isCluster(value);
  return (value as RedisTarget).kind === 'cluster';
}

/** The cluster target of seed URLs (`redis://host:port`); a password in them is not kept. */
function seedTarget(urls: readonly string[]): RedisTarget {
  return {
    kind: 'cluster',
    nodes: urls.map((seed) => {
      const parsed = new URL(seed);
      return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: parsed.port === '' ? 6379 : Number(parsed.port) };
    }),
  };
}

/**
 * The client for a parsed `redis` option, and whether Tollgate opened it (then `close()`
 * closes it): a URL or a target is opened here, a client passed in is used as it is.
 */
export function clientFor(option: string | readonly string[] | RedisClient | RedisTarget, timeoutMs: number): { client: RedisClient; owned: boolean } {
  if (typeof option === 'string') return { client: connect(option, timeoutMs), owned: true };
  if (isSeedList(option)) return { client: openRedis(seedTarget(option), { timeoutMs }), owned: true };
  if (isRedisClient(option)) return { client: option, owned: false };
  return { client: openRedis(option, { timeoutMs }), owned: true };
}

/** Closes a client opened by {@link openRedis}: QUIT when connected, else just drop it (a lazy client never connected). */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}

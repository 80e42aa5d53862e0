// What fail-open needs from a Redis client: commands that fail at once when not connected, and are never run late.
import { Redis } from 'ioredis';
import { singleTarget, type RedisTarget } from '../core/redis-target.js';
import { isCluster, type RedisClient } from './connection.js';
import { FAIL_OPEN_CLIENT_OPTIONS, openRedis } from './topology.js';

export { FAIL_OPEN_CLIENT_OPTIONS };

/** Whether `client` was created with {@link FAIL_OPEN_CLIENT_OPTIONS}. */
export function supportsFailOpen(client: RedisClient): boolean {
  const options = client.options as { enableOfflineQueue?: unknown; autoResendUnfulfilledCommands?: unknown };
  const resend = isCluster(client) ? true : options.autoResendUnfulfilledCommands === false;
  return options.enableOfflineQueue === false && resend;
}

/**
 * Opens a client with {@link FAIL_OPEN_CLIENT_OPTIONS} for a `redis://` URL or any
 * {@link RedisTarget} (one server, Sentinel, Cluster) and resolves once it is ready. It is
 * async because such a client has no offline queue: every command sent before the connection
 * is up fails at once, so a client handed out before then would answer the first requests with
 * 503 (or fall open for nobody). Rejects when Redis cannot be reached within `timeoutMs`. Once
 * connected it keeps reconnecting in the background; attach an `error` listener.
 */
export async function connectForFailOpen(url: string, timeoutMs: number): Promise<Redis>;
export async function connectForFailOpen(target: string | RedisTarget, timeoutMs: number): Promise<RedisClient>;
export async function connectForFailOpen(target: string | RedisTarget, timeoutMs: number): Promise<RedisClient> {
  const client = openRedis(typeof target === 'string' ? singleTarget('the URL', target) : target, { timeoutMs, failOpen: true });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw error;
  }
  return client;
}


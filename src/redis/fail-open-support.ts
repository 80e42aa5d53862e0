// What fail-open needs from a Redis client: commands that fail at once when not connected, and are never run late.
import { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './connection.js';

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

/** Whether `client` was created with {@link FAIL_OPEN_CLIENT_OPTIONS}. */
export function supportsFailOpen(client: RedisClient): boolean {
  const options = client.options as { enableOfflineQueue?: unknown; autoResendUnfulfilledCommands?: unknown };
  const resend = isCluster(client) ? true : options.autoResendUnfulfilledCommands === false;
  return options.enableOfflineQueue === false && resend;
}

/**
 * Opens a client with {@link FAIL_OPEN_CLIENT_OPTIONS} and resolves once it is ready. It is
 * async because such a client has no offline queue: every command sent before the connection
 * is up fails at once, so a client handed out before then would answer the first requests with
 * 503 (or fall open for nobody). Rejects when Redis cannot be reached within `timeoutMs`. Once
 * connected it keeps reconnecting in the background; attach an `error` listener.
 */
export async function connectForFailOpen(url: string, timeoutMs: number): Promise<Redis> {
  const client = new Redis(url, {
    ...FAIL_OPEN_CLIENT_OPTIONS,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  });
  await client.connect();
  return client;
}

const NEVER_SENT = [
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
];

/**
 * True when `error` (or one of its causes) says the command was refused before it was
 * written to any socket: Redis cannot have run it, now or later. Timeouts and closed
 * connections are ambiguous and answer false.
 */
export function neverSent(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (NEVER_SENT.includes(current.message)) return true;
  }
  return false;
}

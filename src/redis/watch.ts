// Listens to a Redis client's connection events and reports them to an observer (ioredis would otherwise print each error).
import type { TollgateObserver } from '../core/observer.js';
import type { RedisClient } from './connection.js';

/**
 * Reports connection errors (`error` events, one per failed reconnect) and the connection
 * becoming ready again. With this listener ioredis no longer prints
 * `[ioredis] Unhandled error event` to stderr; the observer decides what to log (the
 * logging observer: one line when Redis goes away, one when it is back).
 */
export function watchConnection(client: RedisClient, observer: TollgateObserver): void {
  client.on('error', (error: unknown) => {
    observer.redisError({ operation: 'connection', reason: 'unavailable', message: error instanceof Error ? error.message : String(error) });
  });
  client.on('ready', () => observer.redisUp());
}

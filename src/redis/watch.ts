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

/**
 * Lets any number of callers wait for a client to be connected again with one `ready` listener
 * between them: refunds that would otherwise poll a Redis that is away, each on its own timer.
 * A wait holds nothing once it has ended (no reaction left on a long-lived promise).
 */
export class ReadyWait {
  readonly #client: RedisClient;
  readonly #waiters = new Set<() => void>();
  #listening = false;
  #released = false;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Whether the client is connected and serving commands now. */
  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  /** Resolves when the client is ready (at once if it is), after `maxMs`, or on {@link release}. */
  wait(maxMs: number): Promise<void> {
    if (this.ready || this.#released) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, maxMs));
      timer.unref();
      this.#waiters.add(done);
      if (!this.#listening) {
        this.#listening = true;
        this.#client.once('ready', () => {
          this.#listening = false;
          this.#wakeAll();
        });
      }
    });
  }

  /** Ends every wait now and makes later ones return at once (the owner is closing). */
  release(): void {
    this.#released = true;
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const done of [...this.#waiters]) done();
  }
}
